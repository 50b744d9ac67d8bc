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
mammograms AS (
    SELECT person, max(code = 'QEQK004') AS organised
    FROM CAM_ACTS
    WHERE code IN ('QEQK004', 'QEQK001')
      AND day BETWEEN CAST($period_start AS DATE) AND CAST($period_end AS DATE)
    GROUP BY 1
)
SELECT count(*) AS n,
       count(m.person) AS screened,
       count(*) FILTER (WHERE m.organised) AS organised
FROM population p LEFT JOIN mammograms m USING (person)
