#!/usr/bin/env Rscript
# Write renv.lock (renv's JSON lockfile format) from the installed R library, without needing renv.
#
# Usage:  Rscript scripts/write_renv_lock.R [OUTPUT]      (default OUTPUT: renv.lock)
#
# Records the R packages emoalign's R side needs and their recursive hard dependencies
# (Depends, Imports, LinkingTo; base packages such as stats/utils are part of R and left out),
# each with Package, Version, Source "Repository", Repository "CRAN" and Requirements.
# A package that is not installed here but is listed in NOT_INSTALLED is recorded with the CRAN
# version given there (and its dependencies from that list); the lockfile's "_emoalign" block
# names those records, since their versions were not read from the library.
#
# Users restore the library with:  Rscript -e 'install.packages("renv"); renv::restore()'

args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args) >= 1) args[[1]] else "renv.lock"

TARGETS <- c("lme4", "lmerTest", "psych", "emmeans", "broom.mixed", "jsonlite", "yaml", "pbkrtest", "irr")
# current CRAN versions of packages that cannot be installed on the build machine (no CRAN access there)
NOT_INSTALLED <- list(
  irr = list(Version = "0.84.1", Requirements = c("lpSolve"))
)
FIELDS <- c("Depends", "Imports", "LinkingTo")

ip <- installed.packages(fields = "Repository")
ip <- ip[!duplicated(ip[, "Package"]), , drop = FALSE]  # first library on .libPaths() wins, as in library()
rownames(ip) <- ip[, "Package"]
base_pkgs <- rownames(ip)[!is.na(ip[, "Priority"]) & ip[, "Priority"] == "base"]

direct_deps <- function(pkg) {
  if (pkg %in% names(NOT_INSTALLED)) return(NOT_INSTALLED[[pkg]]$Requirements)
  if (!pkg %in% rownames(ip)) stop(sprintf("package %s is not installed; install it or add it to NOT_INSTALLED", pkg))
  deps <- tools::package_dependencies(pkg, db = ip, which = FIELDS, recursive = FALSE)[[1]]
  setdiff(unique(deps), c("R", base_pkgs))
}

# breadth-first closure over hard dependencies
todo <- TARGETS
seen <- character()
while (length(todo)) {
  pkg <- todo[[1]]
  todo <- todo[-1]
  if (pkg %in% seen) next
  seen <- c(seen, pkg)
  todo <- c(todo, setdiff(direct_deps(pkg), seen))
}

record <- function(pkg) {
  if (pkg %in% names(NOT_INSTALLED)) {
    version <- NOT_INSTALLED[[pkg]]$Version
    reqs <- NOT_INSTALLED[[pkg]]$Requirements
  } else {
    version <- unname(ip[pkg, "Version"])
    reqs <- tools::package_dependencies(pkg, db = ip, which = FIELDS, recursive = FALSE)[[1]]
    reqs <- setdiff(unique(reqs), "R")
  }
  rec <- list(Package = pkg, Version = version, Source = "Repository", Repository = "CRAN")
  if (length(reqs)) rec$Requirements <- I(sort(reqs))
  rec
}

pkgs <- sort(seen)
lock <- list(
  R = list(
    Version = paste(R.version$major, R.version$minor, sep = "."),
    Repositories = list(list(Name = "CRAN", URL = "https://cloud.r-project.org"))
  ),
  Packages = setNames(lapply(pkgs, record), pkgs),
  `_emoalign` = list(
    written_by = "scripts/write_renv_lock.R",
    not_read_from_library = setNames(
      lapply(names(NOT_INSTALLED), function(p) sprintf(
        "%s %s: not installed where this lockfile was written; version is the current CRAN release",
        p, NOT_INSTALLED[[p]]$Version)),
      names(NOT_INSTALLED))
  )
)

json <- jsonlite::toJSON(lock, auto_unbox = TRUE, pretty = 2)
tmp <- tempfile(pattern = ".renv.lock.", tmpdir = dirname(normalizePath(out, mustWork = FALSE)))
writeLines(json, tmp)
if (!file.rename(tmp, out)) stop("could not move the lockfile into place: ", out)
cat(sprintf("wrote %s: R %s, %d packages (%s not read from the library)\n", out, lock$R$Version, length(pkgs),
            paste(names(NOT_INSTALLED), collapse = ", ")))
