-- parkinson-trajectories' headline written by hand in DuckDB SQL, apart from
-- hdh.studies.parkinson_trajectories (see bench/study_sql.py). Parameters: $washout_start
-- (date), $washout_days. Returns one row: n, then for each age group (young: under 70 at
-- the first dispensing, by years) the new users whose first line is levodopa, an agonist, a
-- MAO-B inhibitor or another antiparkinsonian.
WITH pd AS (
    SELECT person, day,
           CASE WHEN atc LIKE 'N04BA%' THEN 1 WHEN atc LIKE 'N04BC%' THEN 2
                WHEN atc LIKE 'N04BD%' THEN 3 ELSE 4 END AS rank
    FROM DISPENSED WHERE atc LIKE 'N04B%'
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
