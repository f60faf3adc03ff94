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

# emoalign_call over several argument lists, in up to `cores` forked workers of this R session
# (parallel::mclapply, Unix only: each worker shares the sourced functions and loaded packages and sends its
# result back serialized; cores = 1, one call or Windows: in turn, here). Results in the order of `arglists`;
# a worker that dies returns an error entry instead of stopping the others. `packages` are loaded here first, so
# the workers inherit them instead of each loading them again.
emoalign_call_each <- function(fun, arglists, cores = 1L, packages = character(0)) {
  for (p in packages) loadNamespace(p)
  one <- function(args) emoalign_call(fun, args)
  if (cores <= 1L || length(arglists) < 2L || .Platform$OS.type != "unix") return(lapply(arglists, one))
  res <- parallel::mclapply(arglists, one, mc.cores = min(cores, length(arglists)), mc.preschedule = FALSE)
  lapply(res, function(x) if (is.list(x) && !is.null(x$error)) x else
    list(result = NULL, warnings = character(0), messages = character(0),
         error = paste("an R worker process failed:", paste(as.character(x), collapse = " "))))
}
