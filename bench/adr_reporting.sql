-- adr-reporting's headline written by hand in DuckDB SQL, apart from hdh.studies.adr_reporting:
-- the independent computation the tests compare the study with. Expects the views ER_PRS_F,
-- ER_PHA_F, IR_PHA_R, IR_BEN_R and HDH_PV_CAS over a synthetic extract of `hdh data synth`,
-- and the parameters $start and $end (DATE, the period of first dispensings) and
-- $window_days. Returns one row per drug class: drug, new_users, reports, serious, the
-- reports per reporter type, and n_new_users (persons with a new use of any class, the same
-- on every row).
WITH lines AS (
    SELECT p.BEN_NIR_PSA, p.BEN_RNG_GEM, CAST(p.EXE_SOI_DTD AS DATE) AS day, p.PRS_NAT_REF,
           h.PHA_PRS_C13, abs(h.PHA_ACT_QSN) AS qty, p.FLX_DIS_DTD, p.DCT_ORD_NUM,
           p.FLX_EMT_NUM, p.FLX_EMT_ORD, p.FLX_EMT_TYP, p.FLX_TRT_DTD, p.ORG_CLE_NUM,
           p.PRS_ORD_NUM, p.REM_TYP_AFF,
           coalesce(p.BSE_REM_SGN, 0) < 0 OR coalesce(p.PRS_ACT_QTE, 0) < 0
             OR coalesce(h.PHA_ACT_QSN, 0) < 0 OR coalesce(p.PRS_PAI_MNT, 0) < 0 AS negative
    FROM ER_PRS_F p
    JOIN ER_PHA_F h USING (DCT_ORD_NUM, FLX_DIS_DTD, FLX_EMT_NUM, FLX_EMT_ORD, FLX_EMT_TYP,
                           FLX_TRT_DTD, ORG_CLE_NUM, PRS_ORD_NUM, REM_TYP_AFF)
    WHERE p.DPN_QLF IS NULL OR p.DPN_QLF <> 71
),
cancels AS (
    SELECT BEN_NIR_PSA, BEN_RNG_GEM, day, PRS_NAT_REF, PHA_PRS_C13, qty, count(*) AS n
    FROM lines WHERE negative
    GROUP BY ALL
),
kept AS (
    SELECT l.* FROM (
        SELECT *, row_number() OVER (
            PARTITION BY BEN_NIR_PSA, BEN_RNG_GEM, day, PRS_NAT_REF, PHA_PRS_C13, qty
            ORDER BY FLX_DIS_DTD, DCT_ORD_NUM, FLX_EMT_NUM, FLX_EMT_ORD, FLX_EMT_TYP,
                     FLX_TRT_DTD, ORG_CLE_NUM, PRS_ORD_NUM, REM_TYP_AFF) AS rank
        FROM lines WHERE NOT negative
    ) l
    LEFT JOIN cancels k USING (BEN_NIR_PSA, BEN_RNG_GEM, day, PRS_NAT_REF, PHA_PRS_C13, qty)
    WHERE k.n IS NULL OR l.rank > k.n
),
classes (drug, prefix, position) AS (
    VALUES ('antiplatelet', 'B01AC', 1), ('anticoagulant', 'B01AF', 2), ('statin', 'C10AA', 3),
           ('raas_agent', 'C09', 4), ('beta_blocker', 'C07', 5), ('diuretic', 'C03', 6),
           ('antiparkinsonian', 'N04B', 7), ('antibacterial', 'J01', 8), ('nsaid', 'M01', 9),
           ('tramadol', 'N02AX', 10), ('paracetamol', 'N02BE', 11),
           ('proton_pump_inhibitor', 'A02BC', 12)
),
dispensed AS (
    SELECT p.BEN_IDT_ANO AS person, k.day, upper(r.PHA_ATC_C07) AS atc
    FROM kept k
    JOIN (SELECT DISTINCT BEN_NIR_PSA, BEN_RNG_GEM, BEN_IDT_ANO FROM IR_BEN_R) p
      USING (BEN_NIR_PSA, BEN_RNG_GEM)
    JOIN IR_PHA_R r ON CAST(r.PHA_CIP_C13 AS VARCHAR) = CAST(k.PHA_PRS_C13 AS VARCHAR)
),
first_use AS (
    SELECT d.person, c.drug, min(d.day) AS first_day
    FROM dispensed d JOIN classes c ON starts_with(d.atc, c.prefix)
    GROUP BY ALL
),
users AS (
    SELECT * FROM first_use WHERE first_day BETWEEN CAST($start AS DATE) AND CAST($end AS DATE)
),
reports AS (
    SELECT u.drug, count(*) AS reports,
           count(*) FILTER (WHERE v.PV_GRA_TOP) AS serious,
           count(*) FILTER (WHERE v.PV_DCL_TYP = 'physician') AS physician,
           count(*) FILTER (WHERE v.PV_DCL_TYP = 'pharmacist') AS pharmacist,
           count(*) FILTER (WHERE v.PV_DCL_TYP = 'other_hcp') AS other_hcp,
           count(*) FILTER (WHERE v.PV_DCL_TYP = 'patient') AS patient
    FROM HDH_PV_CAS v
    JOIN classes c ON starts_with(upper(v.PHA_ATC_C07), c.prefix)
    JOIN users u ON u.person = v.BEN_IDT_ANO AND u.drug = c.drug
    WHERE date_diff('day', u.first_day, CAST(v.PV_EFF_DTD AS DATE)) BETWEEN 0 AND $window_days
    GROUP BY u.drug
),
counted AS (
    SELECT drug, count(*) AS new_users FROM users GROUP BY drug
)
SELECT c.drug, coalesce(n.new_users, 0) AS new_users, coalesce(r.reports, 0) AS reports,
       coalesce(r.serious, 0) AS serious, coalesce(r.physician, 0) AS physician,
       coalesce(r.pharmacist, 0) AS pharmacist, coalesce(r.other_hcp, 0) AS other_hcp,
       coalesce(r.patient, 0) AS patient,
       (SELECT count(DISTINCT person) FROM users) AS n_new_users
FROM classes c LEFT JOIN counted n USING (drug) LEFT JOIN reports r USING (drug)
ORDER BY c.position
