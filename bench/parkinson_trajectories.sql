-- parkinson-trajectories' headline written by hand in DuckDB SQL, apart from
-- hdh.studies.parkinson_trajectories (see bench/study_sql.py). Parameters: $washout_start
-- (date), $washout_days. Returns one row: n, then for each age group (young: under 70 at
-- the first dispensing, by years) the new users whose first line is levodopa, an agonist, a
-- MAO-B inhibitor or another antiparkinsonian.
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
    SELECT p.BEN_IDT_ANO AS person, k.day, r.PHA_ATC_C07 AS atc
    FROM kept k
    JOIN (SELECT DISTINCT BEN_NIR_PSA, BEN_RNG_GEM, BEN_IDT_ANO FROM IR_BEN_R) p
      USING (BEN_NIR_PSA, BEN_RNG_GEM)
    JOIN IR_PHA_R r ON CAST(r.PHA_CIP_C13 AS VARCHAR) = CAST(k.PHA_PRS_C13 AS VARCHAR)
),
pd AS (
    SELECT person, day,
           CASE WHEN atc LIKE 'N04BA%' THEN 1 WHEN atc LIKE 'N04BC%' THEN 2
                WHEN atc LIKE 'N04BD%' THEN 3 ELSE 4 END AS rank
    FROM dispensed WHERE atc LIKE 'N04B%'
),
first AS (
    SELECT person, min(day) AS first_day FROM pd GROUP BY person
),
users AS (
    SELECT f.person, f.first_day, min(p.rank) AS rank
    FROM first f JOIN pd p ON p.person = f.person AND p.day = f.first_day
    WHERE f.first_day >= CAST($washout_start AS DATE) + to_days(CAST($washout_days AS INTEGER))
    GROUP BY ALL
),
aged AS (
    SELECT u.*, year(u.first_day) - b.born AS age
    FROM users u
    JOIN (SELECT DISTINCT CAST(BEN_IDT_ANO AS VARCHAR) AS person, BEN_NAI_ANN AS born
          FROM IR_BEN_R) b USING (person)
)
SELECT count(*) AS n,
       count(*) FILTER (WHERE age < 70 AND rank = 1) AS young_levodopa,
       count(*) FILTER (WHERE age < 70 AND rank = 2) AS young_agonist,
       count(*) FILTER (WHERE age < 70 AND rank = 3) AS young_maob,
       count(*) FILTER (WHERE age < 70 AND rank = 4) AS young_other,
       count(*) FILTER (WHERE age >= 70 AND rank = 1) AS old_levodopa,
       count(*) FILTER (WHERE age >= 70 AND rank = 2) AS old_agonist,
       count(*) FILTER (WHERE age >= 70 AND rank = 3) AS old_maob,
       count(*) FILTER (WHERE age >= 70 AND rank = 4) AS old_other
FROM aged
