-- breast-screening's headline written by hand in DuckDB SQL, apart from
-- hdh.studies.breast_screening (see bench/study_sql.py). Parameters: $period_start,
-- $period_end (dates), $age_min, $age_max (years, at the start of the period). Returns one
-- row: n (women), screened (with a mammography in the period), organised (one of them a
-- QEQK004).
WITH women AS (
    SELECT DISTINCT CAST(BEN_IDT_ANO AS VARCHAR) AS person,
           year(CAST($period_start AS DATE)) - BEN_NAI_ANN AS age
    FROM IR_BEN_R
    WHERE BEN_SEX_COD = 2
      AND (BEN_DCD_DTE IS NULL OR CAST(BEN_DCD_DTE AS DATE) >= CAST($period_start AS DATE))
),
population AS (
    SELECT * FROM women WHERE age BETWEEN $age_min AND $age_max
),
lines AS (
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
mammograms AS (
    SELECT CAST(b.BEN_IDT_ANO AS VARCHAR) AS person, max(k.CAM_PRS_IDE = 'QEQK004') AS organised
    FROM kept k
    JOIN (SELECT DISTINCT BEN_NIR_PSA, BEN_RNG_GEM, BEN_IDT_ANO FROM IR_BEN_R) b
      USING (BEN_NIR_PSA, BEN_RNG_GEM)
    WHERE k.CAM_PRS_IDE IN ('QEQK004', 'QEQK001')
      AND k.day BETWEEN CAST($period_start AS DATE) AND CAST($period_end AS DATE)
    GROUP BY 1
)
SELECT count(*) AS n,
       count(m.person) AS screened,
       count(*) FILTER (WHERE m.organised) AS organised
FROM population p LEFT JOIN mammograms m USING (person)
