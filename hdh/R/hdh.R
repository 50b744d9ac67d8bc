# HDH's R helper: the mounted dataset versions as R data.frames, through the same Python
# library as `import hdh` (docs/notebook-library.md, "R").
#
#   prs <- hdh_read("demo-snds.ER_PRS_F", columns = c("BEN_NIR_PSA", "EXE_SOI_DTD"),
#                   filters = list(list("EXE_SOI_DTD", ">=", as.Date("2022-01-01"))))
#   hdh_sql('SELECT year, count(*) AS n FROM "demo-snds".T_MCOaaB GROUP BY 1')
#   hdh_datasets(); hdh_tables("demo-snds")
#
# The sandbox's R kernel loads it at start-up (R_PROFILE_USER); elsewhere
# source("<the hdh package>/R/hdh.R"). It attaches an environment "hdh" holding the
# functions (so rm(list = ls()) keeps them). Python is reached through reticulate
# (RETICULATE_PYTHON, else the activated VIRTUAL_ENV's python): hdh/_r.py runs the request and
# writes a temporary CSV with the column types, read here with data.table::fread and removed.
# An hdh.HDHError becomes stop() with its one-line message.

if ("hdh" %in% search()) detach("hdh", character.only = TRUE)

local({
  .hdh <- new.env()  # the Python module and fread's quoting, found once

  hdh_read <- function(name, columns = NULL, filters = NULL, version = NULL, years = NULL) {
    .hdh_run("read", list(name = name, columns = columns, filters = filters,
                          version = version, years = years))
  }

  hdh_sql <- function(query, versions = NULL, params = NULL) {
    .hdh_run("sql", list(query = query, versions = versions, params = params))
  }

  hdh_datasets <- function() .hdh_run("datasets", list())

  hdh_tables <- function(dataset, version = NULL) {
    .hdh_run("tables", list(dataset = dataset, version = version))
  }

  .hdh_bridge <- function() {
    if (is.null(.hdh$py)) {
      venv <- Sys.getenv("VIRTUAL_ENV")
      if (!nzchar(Sys.getenv("RETICULATE_PYTHON")) && nzchar(venv)) {
        Sys.setenv(RETICULATE_PYTHON = file.path(venv, "bin", "python"))
      }
      .hdh$py <- reticulate::import("hdh._r", convert = TRUE)
    }
    .hdh$py
  }

  # R values as JSON the Python side turns back: Date and POSIXct as {"date"}/{"time"}
  .hdh_encode <- function(x) {
    if (inherits(x, "Date")) {
      v <- lapply(format(x, "%Y-%m-%d"), function(d) list(date = d))
    } else if (inherits(x, "POSIXt")) {
      v <- lapply(as.numeric(as.POSIXct(x)), function(s) list(time = s))
    } else if (is.factor(x)) {
      return(as.character(x))
    } else if (is.list(x)) {
      return(lapply(x, .hdh_encode))
    } else {
      return(x)
    }
    if (length(v) == 1) v[[1]] else v
  }

  .hdh_run <- function(fn, args) {
    args <- Filter(Negate(is.null), args)
    request <- jsonlite::toJSON(list(fn = fn, args = .hdh_encode(args)),
                                auto_unbox = TRUE, digits = NA, na = "null", null = "null")
    path <- tempfile("hdh-", fileext = ".csv")
    on.exit(unlink(path), add = TRUE)
    answer <- jsonlite::fromJSON(.hdh_bridge()$call(as.character(request), path),
                                 simplifyVector = FALSE)
    if (!is.null(answer$error)) stop(answer$error, call. = FALSE)
    .hdh_frame(answer, path)
  }

  .hdh_csv_types <- c(character = "character", logical = "logical", integer = "integer",
                      double = "numeric", Date = "integer", POSIXct = "numeric")

  .hdh_frame <- function(answer, path) {
    cols <- answer$columns
    n <- as.integer(answer$rows)
    names <- vapply(cols, function(c) c$name, "")
    types <- vapply(cols, function(c) c$type, "")
    as_read <- unname(.hdh_csv_types[types])
    if (n == 0 || length(cols) == 0) {
      out <- lapply(as_read, function(t) vector(if (t == "numeric") "double" else t, 0))
    } else {
      out <- as.list(data.table::fread(
        path, header = FALSE, sep = ",", quote = "\"", colClasses = c("integer", as_read),
        na.strings = "", encoding = "UTF-8", strip.white = FALSE, showProgress = FALSE,
        data.table = FALSE
      ))[-1]
    }
    for (i in seq_along(cols)) {
      out[[i]] <- switch(types[[i]],
        Date = structure(as.double(out[[i]]), class = "Date"),
        POSIXct = structure(as.double(out[[i]]), class = c("POSIXct", "POSIXt"),
                            tzone = cols[[i]]$tz),
        character = .hdh_unquote(out[[i]]),
        out[[i]]
      )
    }
    structure(out, names = names, row.names = .set_row_names(n), class = "data.frame")
  }

  # data.table 1.14 keeps a quoted field's doubled quotes ("a""b" read as a""b): undo it,
  # unless this data.table already does
  .hdh_unquote <- function(x) {
    if (is.null(.hdh$doubled)) {
      probe <- data.table::fread(text = "\"a\"\"b\",1\n", header = FALSE, sep = ",",
                                 colClasses = c("character", "integer"), data.table = FALSE)
      .hdh$doubled <- identical(probe[[1]], "a\"\"b")
    }
    if (.hdh$doubled) gsub("\"\"", "\"", x, fixed = TRUE) else x
  }
}, envir = attach(NULL, name = "hdh", warn.conflicts = FALSE))
