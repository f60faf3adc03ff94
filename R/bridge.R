# Call wrapper used by emoalign.analysis.rbridge: run fun(...) and return its result together with
# every warning and message it raised (lme4 convergence / singularity notes included), instead of
# letting them reach stderr. Errors are returned as a string, never thrown across rpy2.
emoalign_call <- function(fun, args) {
  warns <- character(0)
  msgs <- character(0)
  err <- NA_character_
  result <- tryCatch(
    withCallingHandlers(
      do.call(fun, args),
      warning = function(w) {
        warns <<- c(warns, conditionMessage(w))
        invokeRestart("muffleWarning")
      },
      message = function(m) {
        msgs <<- c(msgs, sub("\n$", "", conditionMessage(m)))
        invokeRestart("muffleMessage")
      }
    ),
    error = function(e) {
      err <<- conditionMessage(e)
      NULL
    }
  )
  list(result = result, warnings = warns, messages = msgs, error = err)
}

# Versions of R packages (NA when not installed), without loading them.
emoalign_package_versions <- function(pkgs) {
  vapply(pkgs, function(p) {
    d <- suppressWarnings(utils::packageDescription(p))
    if (is.list(d)) d$Version else NA_character_
  }, character(1))
}
