-- hf-readmission's headline written by hand in DuckDB SQL, apart from
-- hdh.studies.hf_readmission: the independent computation the tests compare the study with.
-- Expects the views MCO_A, MCO_B and MCO_C_LINKED (bench/clean_pmsi.sql) besides MCO_C (every year of T_MCOaaA, T_MCOaaB, T_MCOaaC) and
-- IR_BEN_R over a synthetic extract of `hdh data synth`; parameters $window_days and
-- $followup_end (a date). Index stays: clean I50 stays discharged alive at least
-- $window_days before $followup_end; readmitted when another I50 stay of the person is
-- admitted 0 to $window_days days after the discharge. Returns one row: n_stays, n_persons,
-- first_stays, readmitted, device (index stays with a device implant act on or before them)
-- and previous (their previous I50 stays, summed).
WITH c AS (SELECT * FROM MCO_C_LINKED),
persons AS (SELECT DISTINCT BEN_NIR_PSA, BEN_IDT_ANO FROM IR_BEN_R),
hf AS (
    SELECT p.BEN_IDT_ANO AS person, s.ETA_NUM, s.RSA_NUM, s.adm, s.dis,
           coalesce(s.SOR_MOD = '9', false) AS dead
    FROM (
        SELECT * FROM (
            SELECT CAST(ETA_NUM AS VARCHAR) AS ETA_NUM, CAST(RSA_NUM AS VARCHAR) AS RSA_NUM,
                   DGN_PAL, CAST(SOR_MOD AS VARCHAR) AS SOR_MOD
            FROM MCO_B
            WHERE GRG_GHM IS NOT NULL AND GRG_GHM NOT LIKE '90%'
        ) b JOIN c USING (ETA_NUM, RSA_NUM)
        QUALIFY row_number() OVER (PARTITION BY ETA_NUM, RSA_NUM) = 1
    ) s
    JOIN persons p ON p.BEN_NIR_PSA = s.NIR_ANO_17
    WHERE regexp_replace(upper(DGN_PAL), '[ .-]', '', 'g') LIKE 'I50%'
),
idx AS (
    SELECT * FROM hf
    WHERE NOT dead AND dis <= CAST($followup_end AS DATE) - CAST($window_days AS INTEGER)
),
devices AS (
    SELECT DISTINCT p.BEN_IDT_ANO AS person, c.adm AS act_adm
    FROM MCO_A a
    JOIN c ON c.ETA_NUM = CAST(a.ETA_NUM AS VARCHAR) AND c.RSA_NUM = CAST(a.RSA_NUM AS VARCHAR)
    JOIN persons p ON p.BEN_NIR_PSA = c.NIR_ANO_17
    WHERE regexp_replace(upper(a.CDC_ACT), '[ .-]', '', 'g') IN ('DELF013', 'DELF014', 'DELF016')
),
per_stay AS (
    SELECT i.person,
           (SELECT count(*) FROM hf o
             WHERE o.person = i.person AND o.adm < i.adm
               AND (o.ETA_NUM, o.RSA_NUM) <> (i.ETA_NUM, i.RSA_NUM)) AS previous,
           EXISTS (SELECT 1 FROM hf o
                    WHERE o.person = i.person
                      AND (o.ETA_NUM, o.RSA_NUM) <> (i.ETA_NUM, i.RSA_NUM)
                      AND date_diff('day', i.dis, o.adm) BETWEEN 0 AND $window_days) AS readm,
           EXISTS (SELECT 1 FROM devices d
                    WHERE d.person = i.person AND d.act_adm <= i.adm) AS device
    FROM idx i
)
SELECT count(*) AS n_stays,
       count(DISTINCT person) AS n_persons,
       count(*) FILTER (WHERE previous = 0) AS first_stays,
       count(*) FILTER (WHERE readm) AS readmitted,
       count(*) FILTER (WHERE device) AS device,
       coalesce(sum(previous), 0) AS previous
FROM per_stay
