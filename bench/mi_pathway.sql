-- mi-pathway's headline written by hand in DuckDB SQL, apart from hdh.studies.mi_pathway:
-- the independent computation the tests compare the study with, and the hand-written peer
-- of bench/bench_cohort.py. Expects the views MCO_B and MCO_C (every year of T_MCOaaB and
-- T_MCOaaC), ER_PRS_F, ER_PHA_F, IR_PHA_R and IR_BEN_R over a synthetic extract of
-- `hdh data synth` (its return codes: booleans OK when false except SEJ_RET, strings OK
-- when '0'). Returns one row: n, then the persons per class, any and all_four.
WITH c AS (
    SELECT CAST(ETA_NUM AS VARCHAR) AS ETA_NUM, CAST(RSA_NUM AS VARCHAR) AS RSA_NUM,
           NIR_ANO_17, CAST(EXE_SOI_DTD AS DATE) AS adm, CAST(EXE_SOI_DTF AS DATE) AS dis
    FROM MCO_C
    WHERE NIR_ANO_17 IS NOT NULL
      AND NIR_ANO_17 NOT IN ('xxxxxxxxxxxxxxxxx', 'XXXXXXXXXXXXXXXXS')
      AND coalesce(NOT NIR_RET, false) AND coalesce(NAI_RET = '0', false)
      AND coalesce(NOT SEX_RET, false) AND coalesce(SEJ_RET, false)
      AND coalesce(NOT FHO_RET, false) AND coalesce(NOT PMS_RET, false)
      AND coalesce(DAT_RET = '0', false) AND coalesce(NOT COH_NAI_RET, false)
      AND coalesce(NOT COH_SEX_RET, false)
),
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
lines AS (
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
flags AS (
    SELECT person,
           max(atc LIKE 'C07%')::INT AS beta_blocker,
           max(atc LIKE 'B01AC%')::INT AS antiplatelet,
           max(atc LIKE 'C10AA%')::INT AS statin,
           max(atc LIKE 'C09%')::INT AS acei_arb
    FROM dispensed d JOIN idx USING (person)
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
