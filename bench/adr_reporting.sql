-- adr-reporting's headline written by hand in DuckDB SQL, apart from hdh.studies.adr_reporting:
-- the independent computation the tests compare the study with. Expects the views ER_PRS_F,
-- ER_PHA_F, IR_PHA_R, IR_BEN_R and HDH_PV_CAS over a synthetic extract of `hdh data synth`
-- and DISPENSED (the clean dispensings of bench/clean_dcir.sql),
-- and the parameters $start and $end (DATE, the period of first dispensings) and
-- $window_days. Returns one row per drug class: drug, new_users, reports, serious, the
-- reports per reporter type, and n_new_users (persons with a new use of any class, the same
-- on every row).
WITH classes (drug, prefix, position) AS (
    VALUES ('antiplatelet', 'B01AC', 1), ('anticoagulant', 'B01AF', 2), ('statin', 'C10AA', 3),
           ('raas_agent', 'C09', 4), ('beta_blocker', 'C07', 5), ('diuretic', 'C03', 6),
           ('antiparkinsonian', 'N04B', 7), ('antibacterial', 'J01', 8), ('nsaid', 'M01', 9),
           ('tramadol', 'N02AX', 10), ('paracetamol', 'N02BE', 11),
           ('proton_pump_inhibitor', 'A02BC', 12)
),
first_use AS (
    SELECT d.person, c.drug, min(d.day) AS first_day
    FROM DISPENSED d JOIN classes c ON starts_with(upper(d.atc), c.prefix)
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
