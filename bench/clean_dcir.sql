-- The clean DCIR lines the studies' SQL shares, written by hand apart from hdh.cohort:
-- ER_PRS_F joined to its detail table on the 9 keys, without the information-only lines
-- (DPN_QLF = 71), without the regularisations (a negative sign, quantity or amount) nor the
-- earliest-fed positive line each one cancels (same patient, care date, PRS_NAT_REF,
-- product and absolute quantity), linked to the person (BEN_IDT_ANO). Two views:
-- DISPENSED(person, day, atc) from ER_PHA_F with IR_PHA_R's ATC code, and
-- CAM_ACTS(person, day, code) from ER_CAM_F. bench/study_sql.py creates them.
CREATE VIEW DISPENSED AS
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
dispensed AS (
    SELECT CAST(p.BEN_IDT_ANO AS VARCHAR) AS person, k.day, r.PHA_ATC_C07 AS atc
    FROM kept k
    JOIN (SELECT DISTINCT BEN_NIR_PSA, BEN_RNG_GEM, BEN_IDT_ANO FROM IR_BEN_R) p
      USING (BEN_NIR_PSA, BEN_RNG_GEM)
    JOIN IR_PHA_R r ON CAST(r.PHA_CIP_C13 AS VARCHAR) = CAST(k.PHA_PRS_C13 AS VARCHAR)
)
SELECT * FROM dispensed;

CREATE VIEW CAM_ACTS AS
WITH lines AS (
    SELECT p.BEN_NIR_PSA, p.BEN_RNG_GEM, CAST(p.EXE_SOI_DTD AS DATE) AS day, p.PRS_NAT_REF,
           c.CAM_PRS_IDE, abs(p.PRS_ACT_QTE) AS qty, p.FLX_DIS_DTD, p.DCT_ORD_NUM,
           p.FLX_EMT_NUM, p.FLX_EMT_ORD, p.FLX_EMT_TYP, p.FLX_TRT_DTD, p.ORG_CLE_NUM,
           p.PRS_ORD_NUM, p.REM_TYP_AFF,
           coalesce(p.BSE_REM_SGN, 0) < 0 OR coalesce(p.PRS_ACT_QTE, 0) < 0
             OR coalesce(p.PRS_PAI_MNT, 0) < 0 AS negative
    FROM ER_PRS_F p
    JOIN ER_CAM_F c USING (DCT_ORD_NUM, FLX_DIS_DTD, FLX_EMT_NUM, FLX_EMT_ORD, FLX_EMT_TYP,
                           FLX_TRT_DTD, ORG_CLE_NUM, PRS_ORD_NUM, REM_TYP_AFF)
    WHERE p.DPN_QLF IS NULL OR p.DPN_QLF <> 71
),
cancels AS (
    SELECT BEN_NIR_PSA, BEN_RNG_GEM, day, PRS_NAT_REF, CAM_PRS_IDE, qty, count(*) AS n
    FROM lines WHERE negative
    GROUP BY ALL
),
kept AS (
    SELECT l.* FROM (
        SELECT *, row_number() OVER (
            PARTITION BY BEN_NIR_PSA, BEN_RNG_GEM, day, PRS_NAT_REF, CAM_PRS_IDE, qty
            ORDER BY FLX_DIS_DTD, DCT_ORD_NUM, FLX_EMT_NUM, FLX_EMT_ORD, FLX_EMT_TYP,
                     FLX_TRT_DTD, ORG_CLE_NUM, PRS_ORD_NUM, REM_TYP_AFF) AS rank
        FROM lines WHERE NOT negative
    ) l
    LEFT JOIN cancels k USING (BEN_NIR_PSA, BEN_RNG_GEM, day, PRS_NAT_REF, CAM_PRS_IDE, qty)
    WHERE k.n IS NULL OR l.rank > k.n
),
acts AS (
    SELECT CAST(b.BEN_IDT_ANO AS VARCHAR) AS person, k.day, k.CAM_PRS_IDE AS code
    FROM kept k
    JOIN (SELECT DISTINCT BEN_NIR_PSA, BEN_RNG_GEM, BEN_IDT_ANO FROM IR_BEN_R) b
      USING (BEN_NIR_PSA, BEN_RNG_GEM)
)
SELECT * FROM acts;
