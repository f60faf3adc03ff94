# Linear mixed models for emoalign (lme4 / lmerTest). Pure functions: data.frame in, tidy data.frame out.
# References: Bates, Maechler, Bolker & Walker (2015) J Stat Softw 67(1); Kuznetsova, Brockhoff &
# Christensen (2017) J Stat Softw 82(13) (Satterthwaite / Kenward-Roger df via lmerTest).

# Relevel factor columns: reference_levels is a named list {column = level}.
set_reference_levels <- function(df, reference_levels) {
  if (is.null(reference_levels)) return(df)
  for (col in names(reference_levels)) {
    lev <- as.character(reference_levels[[col]])
    if (!col %in% names(df)) stop(sprintf("reference_levels names column '%s', which the data lacks", col))
    if (!is.factor(df[[col]])) df[[col]] <- factor(df[[col]])
    if (!lev %in% levels(df[[col]]))
      stop(sprintf("reference level '%s' is not a level of '%s' (levels: %s)", lev, col,
                   paste(levels(df[[col]]), collapse = ", ")))
    df[[col]] <- stats::relevel(df[[col]], ref = lev)
  }
  df
}

# lme4's convergence check compares the absolute gradient with 0.002, which large data sets (e.g.
# 72,000 trials) exceed while the optimum is fine. When lme4 flags a fit, report the scaled
# (relative) gradient too, as ?lme4::convergence suggests: below 0.001 the warning is most likely a
# false positive. Emitted as a message, so emoalign_call keeps it beside lme4's warning.
note_relative_gradient <- function(fit) {
  msgs <- fit@optinfo$conv$lme4$messages
  if (is.null(msgs) || !any(grepl("converge", msgs))) return(invisible(NULL))
  rel <- tryCatch(with(fit@optinfo$derivs, max(abs(solve(Hessian, gradient)))), error = function(e) NA_real_)
  if (!is.na(rel)) message(sprintf("relative gradient %.2g (%s)", rel,
    if (rel < 0.001) "< 0.001: the optimum is very likely fine; lme4's absolute-gradient check is strict at large n"
    else ">= 0.001: treat the estimates with caution"))
  invisible(rel)
}

# lme4 itself signals convergence problems (warnings) and singular fits (message "boundary (singular)
# fit") during the fit; emoalign_call captures both, so the functions below do not repeat them.

# Fit `formula` with lme4 and return tidy rows:
#   effect = "fixed": term, estimate, std_error, statistic (t), df, p_value, conf_low, conf_high
#     (Wald intervals estimate +- qt(1 - (1 - conf_level)/2, df) * SE; df = Inf (normal) for "asymptotic")
#   effect = "ran_pars": group, term = "var__<name>" / "cov__<a>.<b>", estimate (variance / covariance)
#   effect = "fit": term in AIC, BIC, logLik, deviance, nobs, singular
# df_method: "satterthwaite" | "kenward_roger" (lmerTest) | "asymptotic" (lme4, z tests).
fit_lmm <- function(df, formula, reference_levels = NULL, df_method = "satterthwaite",
                    conf_level = 0.95, reml = TRUE, contrast = NULL, contrast_by = NULL) {
  df <- set_reference_levels(df, reference_levels)
  f <- stats::as.formula(formula)
  if (df_method == "asymptotic") {
    fit <- lme4::lmer(f, data = df, REML = reml)
    note_relative_gradient(fit)
    co <- stats::coef(summary(fit))
    dfv <- rep(Inf, nrow(co))
    tv <- co[, "t value"]
    pv <- 2 * stats::pnorm(-abs(tv))
  } else {
    ddf <- switch(df_method, satterthwaite = "Satterthwaite", kenward_roger = "Kenward-Roger",
                  stop(sprintf("unknown df_method '%s'", df_method)))
    fit <- lmerTest::lmer(f, data = df, REML = reml)
    note_relative_gradient(fit)
    co <- stats::coef(summary(fit, ddf = ddf))
    dfv <- co[, "df"]
    tv <- co[, "t value"]
    pv <- co[, "Pr(>|t|)"]
  }
  est <- co[, "Estimate"]
  se <- co[, "Std. Error"]
  q <- stats::qt(1 - (1 - conf_level) / 2, dfv)
  fixed <- data.frame(effect = "fixed", group = NA_character_, term = rownames(co), estimate = est,
                      std_error = se, statistic = tv, df = dfv, p_value = pv,
                      conf_low = est - q * se, conf_high = est + q * se, stringsAsFactors = FALSE)
  vc <- as.data.frame(lme4::VarCorr(fit))
  vterm <- ifelse(is.na(vc$var2), paste0("var__", ifelse(is.na(vc$var1), "Observation", vc$var1)),
                  paste0("cov__", vc$var1, ".", vc$var2))
  ran <- data.frame(effect = "ran_pars", group = vc$grp, term = vterm, estimate = vc$vcov,
                    std_error = NA_real_, statistic = NA_real_, df = NA_real_, p_value = NA_real_,
                    conf_low = NA_real_, conf_high = NA_real_, stringsAsFactors = FALSE)
  ll <- stats::logLik(fit)
  fitstats <- c(AIC = stats::AIC(fit), BIC = stats::BIC(fit), logLik = as.numeric(ll),
                deviance = stats::deviance(fit, REML = FALSE), nobs = stats::nobs(fit),
                singular = as.numeric(lme4::isSingular(fit)))
  fitrows <- data.frame(effect = "fit", group = NA_character_, term = names(fitstats),
                        estimate = unname(fitstats), std_error = NA_real_, statistic = NA_real_,
                        df = NA_real_, p_value = NA_real_, conf_low = NA_real_, conf_high = NA_real_,
                        stringsAsFactors = FALSE)
  out <- rbind(fixed, ran, fitrows)
  if (!is.null(contrast)) {
    ct <- lmm_contrasts(fit, contrast, contrast_by, df_method, conf_level)
    for (b in contrast_by) out[[b]] <- NA_character_
    out <- rbind(out, ct[, names(out)])
  }
  out$n <- stats::nobs(fit)
  rownames(out) <- NULL
  out
}

# Simple effects with emmeans (Lenth 2024): differences between the levels of `factor` (each level minus
# the reference, e.g. "machine - human" for rater_type) within every combination of `by` (e.g. per
# emotion: the per-emotion machine - human bias the model implies, with a t test). df follow df_method
# (emmeans' lmer.df; its size limits are lifted so the choice is never switched silently).
# Rows: effect = "contrast", term = "<level> - <reference>", the `by` columns, estimate, std_error,
# statistic (t), df, p_value (unadjusted), conf_low, conf_high.
lmm_contrasts <- function(fit, factor, by = NULL, df_method = "satterthwaite", conf_level = 0.95) {
  lmer_df <- switch(df_method, satterthwaite = "satterthwaite", kenward_roger = "kenward-roger",
                    asymptotic = "asymptotic")
  emm <- emmeans::emmeans(fit, specs = factor, by = by, lmer.df = lmer_df,
                          lmerTest.limit = Inf, pbkrtest.limit = Inf)
  ct <- emmeans::contrast(emm, method = "trt.vs.ctrl", ref = 1, adjust = "none")
  s <- as.data.frame(summary(ct, infer = c(TRUE, TRUE), level = conf_level, adjust = "none"))
  dfv <- if ("df" %in% names(s)) s$df else rep(Inf, nrow(s))
  stat <- if ("t.ratio" %in% names(s)) s$t.ratio else s$z.ratio
  lo <- if ("lower.CL" %in% names(s)) s$lower.CL else s$asymp.LCL
  hi <- if ("upper.CL" %in% names(s)) s$upper.CL else s$asymp.UCL
  out <- data.frame(effect = "contrast", group = NA_character_, term = as.character(s$contrast),
                    estimate = s$estimate, std_error = s$SE, statistic = stat, df = dfv,
                    p_value = s$p.value, conf_low = lo, conf_high = hi, stringsAsFactors = FALSE)
  for (b in by) out[[b]] <- as.character(s[[b]])
  out
}

# Variance decomposition (crossed random effects), e.g. rating ~ 1 + (1|rater_id) + (1|image_id).
# Returns group, metric ("variance", "share", "rater_image_ratio"), estimate, conf_low, conf_high, n.
# share = variance / sum of all variance components incl. Residual; rater_image_ratio =
# var(rater_id) / var(image_id) when both groups exist (paper section 3.2).
# ci = "profile": likelihood-profile intervals of the SDs (lme4::confint.merMod, method "profile"),
# squared for the variances; "none" (default) leaves them NA (profiling 72,000 trials takes minutes).
variance_components <- function(df, formula, reml = TRUE, ci = "none", conf_level = 0.95) {
  fit <- lme4::lmer(stats::as.formula(formula), data = df, REML = reml)
  note_relative_gradient(fit)
  vc <- as.data.frame(lme4::VarCorr(fit))
  vc <- vc[is.na(vc$var2), , drop = FALSE]
  vc <- vc[is.na(vc$var1) | vc$var1 == "(Intercept)", , drop = FALSE]
  total <- sum(vc$vcov)
  n <- stats::nobs(fit)
  lo <- hi <- rep(NA_real_, nrow(vc))
  if (ci == "profile") {
    pr <- stats::confint(fit, parm = "theta_", method = "profile", oldNames = FALSE, level = conf_level)
    key <- ifelse(rownames(pr) == "sigma", "Residual", sub("^sd_\\(Intercept\\)\\|", "", rownames(pr)))
    idx <- match(vc$grp, key)
    lo <- pr[idx, 1]^2
    hi <- pr[idx, 2]^2
  } else if (ci != "none") {
    stop(sprintf("unknown ci '%s' (use none or profile)", ci))
  }
  out <- rbind(
    data.frame(group = vc$grp, metric = "variance", estimate = vc$vcov, conf_low = lo, conf_high = hi,
               stringsAsFactors = FALSE),
    data.frame(group = vc$grp, metric = "share", estimate = vc$vcov / total, conf_low = NA_real_,
               conf_high = NA_real_, stringsAsFactors = FALSE)
  )
  if (all(c("rater_id", "image_id") %in% vc$grp)) {
    ratio <- vc$vcov[vc$grp == "rater_id"] / vc$vcov[vc$grp == "image_id"]
    out <- rbind(out, data.frame(group = NA_character_, metric = "rater_image_ratio", estimate = ratio,
                                 conf_low = NA_real_, conf_high = NA_real_, stringsAsFactors = FALSE))
  }
  out$n <- n
  rownames(out) <- NULL
  out
}
