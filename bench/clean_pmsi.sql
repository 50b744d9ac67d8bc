-- The PMSI MCO stays whose patient link holds, written by hand apart from hdh.cohort's
-- drop_failed_linkage: T_MCOaaC rows without a placeholder NIR_ANO_17 and with every
-- return code OK (the synthetic extracts' types: booleans OK when false except SEJ_RET,
-- strings OK when '0'), keys as text, admission and discharge as dates. One view,
-- MCO_C_LINKED(ETA_NUM, RSA_NUM, NIR_ANO_17, adm, dis); bench/study_sql.py creates it.
CREATE VIEW MCO_C_LINKED AS
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
;
