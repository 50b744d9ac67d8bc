-- mi-pathway's headline written by hand in DuckDB SQL, apart from hdh.studies.mi_pathway:
-- the independent computation the tests compare the study with, and the hand-written peer
-- of bench/bench_cohort.py. Expects the views MCO_B and MCO_C_LINKED (bench/clean_pmsi.sql) besides MCO_C (every year of T_MCOaaB and
-- T_MCOaaC), ER_PRS_F, ER_PHA_F, IR_PHA_R and IR_BEN_R over a synthetic extract of
-- `hdh data synth` (its return codes: booleans OK when false except SEJ_RET, strings OK
-- when '0'), and DISPENSED (bench/clean_dcir.sql). Returns one row: n, then the persons per
-- class, any and all_four.
WITH c AS (SELECT * FROM MCO_C_LINKED),
b AS (
    SELECT CAST(ETA_NUM AS VARCHAR) AS ETA_NUM, CAST(RSA_NUM AS VARCHAR) AS RSA_NUM, DGN_PAL
    FROM MCO_B
    WHERE GRG_GHM IS NOT NULL AND GRG_GHM NOT LIKE '90%'
),
stays AS (
    SELECT * FROM b JOIN c USING (ETA_NUM, RSA_NUM)
    QUALIFY row_number() OVER (PARTITION BY ETA_NUM, RSA_NUM) = 1
),
mi AS (
    SELECT p.BEN_IDT_ANO AS person, s.adm, s.dis
    FROM stays s
    JOIN (SELECT DISTINCT BEN_NIR_PSA, BEN_IDT_ANO FROM IR_BEN_R) p
      ON p.BEN_NIR_PSA = s.NIR_ANO_17
    WHERE regexp_replace(upper(DGN_PAL), '[ .-]', '', 'g') LIKE 'I21%'
       OR regexp_replace(upper(DGN_PAL), '[ .-]', '', 'g') LIKE 'I22%'
),
idx AS (
    SELECT person, min(dis) AS index_end
    FROM mi
    WHERE (person, adm) IN (SELECT (person, min(adm)) FROM mi GROUP BY person)
    GROUP BY person
),
flags AS (
    SELECT person,
           max(atc LIKE 'C07%')::INT AS beta_blocker,
           max(atc LIKE 'B01AC%')::INT AS antiplatelet,
           max(atc LIKE 'C10AA%')::INT AS statin,
           max(atc LIKE 'C09%')::INT AS acei_arb
    FROM DISPENSED d JOIN idx USING (person)
    WHERE date_diff('day', idx.index_end, d.day) BETWEEN 0 AND 90
    GROUP BY person
)
SELECT (SELECT count(*) FROM idx) AS n,
       coalesce(sum(beta_blocker), 0) AS beta_blocker,
       coalesce(sum(antiplatelet), 0) AS antiplatelet,
       coalesce(sum(statin), 0) AS statin,
       coalesce(sum(acei_arb), 0) AS acei_arb,
       count(*) FILTER (WHERE beta_blocker + antiplatelet + statin + acei_arb > 0) AS "any",
       count(*) FILTER (WHERE beta_blocker + antiplatelet + statin + acei_arb = 4) AS all_four
FROM flags
