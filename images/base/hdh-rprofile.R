# Appended to R's site profile by images/*/Dockerfile: HDH's R helper (hdh_read & co.,
# hdh/R/hdh.R in the venv) for every R session of the image, unless R_PROFILE_USER names an
# existing copy (the local sandbox sets it to the hub's), which R then loads itself.
local({
  user_profile <- Sys.getenv("R_PROFILE_USER")
  if (!nzchar(user_profile) || !file.exists(user_profile)) {
    helper <- Sys.glob("/opt/hdh/venv/lib/python3*/site-packages/hdh/R/hdh.R")
    if (length(helper) == 1L) source(helper, local = globalenv())
  }
})
