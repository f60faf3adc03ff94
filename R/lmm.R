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

# ---- converged fits -----------------------------------------------------------------------------
# lme4's own pipeline (lFormula -> mkLmerDevfun -> optimizeLmer -> mkMerMod; Bates et al. 2015, section
# 1.2, "modular" fitting) with lme4's derivative step turned off (lmerControl(calc.derivs = FALSE)): the
# convergence check below needs fewer deviance evaluations than lme4's and keeps the deviance function,
# so a flagged fit can be restarted without rebuilding the model.

# Finite-difference gradient and Hessian of the deviance at theta: central differences for the gradient
# and the diagonal (2k evaluations), a forward cross difference per off-diagonal pair (k(k-1)/2 more).
deviance_derivs <- function(devfun, theta, fval, h = 1e-4) {
  k <- length(theta)
  g <- numeric(k)
  H <- matrix(0, k, k)
  fplus <- numeric(k)
  for (i in seq_len(k)) {
    e <- replace(numeric(k), i, h)
    fplus[i] <- devfun(theta + e)
    fminus <- devfun(theta - e)
    g[i] <- (fplus[i] - fminus) / (2 * h)
    H[i, i] <- (fplus[i] - 2 * fval + fminus) / h^2
  }
  for (i in seq_len(k)) for (j in seq_len(i - 1)) {
    e <- replace(numeric(k), c(i, j), h)
    H[i, j] <- H[j, i] <- (devfun(theta + e) - fplus[i] - fplus[j] + fval) / h^2
  }
  list(gradient = g, Hessian = H)
}

# Method-of-moments starting values of theta for random parts made only of scalar intercepts (1|g): with r the
# residuals of the fixed part (least squares), the variance of the level means of factor k is about
# s2_k + sum_{j != k} s2_j mean(1/n_k) + s2_e mean(1/n_k) (crossed factors; n_k = observations per level), and the
# variance of r is sum_k s2_k + s2_e: K + 1 linear equations (cf. Henderson 1953, method 3). Returns
# sqrt(s2_k / s2_e) in lme4's theta order, or NULL (lme4's default start) for any other random part or a
# degenerate system. Near the REML optimum, it saves lme4's default optimizer about a quarter of its evaluations.
moment_start <- function(lmod) {
  cnms <- lmod$reTrms$cnms
  if (!all(lengths(cnms) == 1L) || !all(unlist(cnms) == "(Intercept)")) return(NULL)
  fl <- lmod$reTrms$flist[names(cnms)]
  y <- stats::model.response(lmod$fr)
  r <- tryCatch(stats::lm.fit(lmod$X, y)$residuals, error = function(e) NULL)
  if (is.null(r) || length(fl) != length(cnms)) return(NULL)
  K <- length(fl)
  inv_n <- vapply(fl, function(g) mean(1 / tabulate(g)), numeric(1))
  A <- matrix(0, K + 1, K + 1)
  b <- numeric(K + 1)
  for (k in seq_len(K)) {
    A[k, ] <- inv_n[k]
    A[k, k] <- 1
    b[k] <- stats::var(as.numeric(tapply(r, fl[[k]], mean)))
  }
  A[K + 1, ] <- 1
  b[K + 1] <- stats::var(r)
  v <- tryCatch(solve(A, b), error = function(e) NULL)
  if (is.null(v) || !all(is.finite(v)) || v[K + 1] <= 0) return(NULL)
  unname(sqrt(pmax(v[seq_len(K)], 1e-4 * v[K + 1]) / v[K + 1]))
}

# lme4's convergence criterion (lme4:::checkConv, ?lme4::convergence): at a boundary (a variance
# parameter within sing_tol of 0) the fit is singular and the gradient is not checked; otherwise the fit
# is flagged when max(min(|g|, |chol(H)^-T g|)) > tol (0.002). rel_grad = max|H^-1 g| is the Newton step
# (the "relative gradient"). A non-zero optimizer code (e.g. evaluation limit reached) also fails.
convergence_check <- function(devfun, opt, lower, tol = 0.002, sing_tol = 1e-4) {
  theta <- opt$par
  out <- list(singular = any(theta[lower == 0] < sing_tol), max_grad = NA_real_, rel_grad = NA_real_,
              code = as.integer(if (is.null(opt$conv)) 0L else opt$conv))
  if (!out$singular) {
    d <- deviance_derivs(devfun, theta, opt$fval)
    sc <- tryCatch(solve(chol(d$Hessian), d$gradient), error = function(e) NULL)
    out$max_grad <- if (is.null(sc)) Inf else max(pmin(abs(sc), abs(d$gradient)))
    out$rel_grad <- tryCatch(max(abs(solve(d$Hessian, d$gradient))), error = function(e) NA_real_)
  }
  out$ok <- out$code == 0 && (out$singular || out$max_grad <= tol)
  out
}

# Fit an LMM and make sure it converged. The first fit is lme4's default (nloptwrap BOBYQA). When it fails
# lme4's check, it is restarted from the fitted theta with `restart` (an optimizer of lme4::allFit's set:
# bobyqa, Nelder_Mead, nlminbwrap, nloptwrap; "none" = no restart) and the fit with the lower criterion
# (REML or ML deviance) is kept. Returns list(fit, glance): glance is one broom-style row (broom.mixed
# glance names: nobs, sigma, logLik, AIC, BIC, deviance, REMLcrit, df.residual) plus the convergence record:
# start ("lme4" or "moments"), optimizer, feval, criterion, max_grad, rel_grad, singular (lme4::isSingular),
# converged, restarted, restart_optimizer, restart_kept, restart_criterion_change (first - restarted criterion; > 0 = improved),
# restart_max_change (max |change| of fixed effects and variance components), message.
# lmertest = TRUE returns an lmerTest model (Satterthwaite / Kenward-Roger tests). control: optimizer
# control of the first fit (lme4's optCtrl; default lme4's), e.g. list(ftol_abs = 1e-2) for a test that
# needs a fit stopping early.
# start = "moments" starts the first fit at moment_start() (when the random part allows it; then with bobyqa,
# rhobeg 1e-2, unless `control` is given), "lme4" at lme4's default (theta = 1, nloptwrap).
fit_lmer <- function(formula, data, REML = TRUE, restart = "bobyqa", grad_tol = 0.002, lmertest = FALSE,
                     control = list(), start = "lme4") {
  f <- stats::as.formula(formula)  # its environment (this frame) holds `data`: lmerTest rebuilds the devfun from it
  ctrl <- lme4::lmerControl(calc.derivs = FALSE)
  lmod <- lme4::lFormula(f, data = data, REML = REML, control = ctrl)
  devfun <- do.call(lme4::mkLmerDevfun, c(lmod, list(control = ctrl)))
  rho <- environment(devfun)
  optimize <- function(optimizer, start = NULL, control = list())
    lme4::optimizeLmer(devfun, optimizer = optimizer, restart_edge = ctrl$restart_edge,
                       boundary.tol = ctrl$boundary.tol, start = start, control = control, calc.derivs = FALSE)
  mc <- quote(lme4::lmer(formula = f, data = data, REML = REML))
  build <- function(opt, chk, msg) {
    devfun(opt$par)  # the model object reads the deviance function's current state
    lme4::mkMerMod(rho, opt, lmod$reTrms, fr = lmod$fr, mc = mc,
                   lme4conv = list(code = if (chk$ok) 0L else -1L, messages = msg))
  }
  estimates <- function(fit) c(lme4::fixef(fit), as.data.frame(lme4::VarCorr(fit))$vcov)
  fail_msg <- function(chk) if (chk$code != 0) sprintf("optimizer stopped with code %d", chk$code) else
    sprintf("Model failed to converge with max|grad| = %.3g (tol = %g)", chk$max_grad, grad_tol)

  theta0 <- if (start == "moments") moment_start(lmod) else NULL
  # From the moment start (near the optimum) BOBYQA with a small initial trust region (as the restart below) needs
  # about a third fewer deviance evaluations than nloptwrap's default steps and stops closer to the optimum; a
  # caller's optimizer control (nloptwrap's optCtrl) keeps lme4's default optimizer.
  optimizer1 <- if (!is.null(theta0) && length(control) == 0) "bobyqa" else ctrl$optimizer
  if (optimizer1 == "bobyqa") control <- list(rhobeg = 1e-2, rhoend = 1e-6)
  opt <- optimize(optimizer1, start = if (is.null(theta0)) NULL else list(theta = theta0), control = control)
  chk <- convergence_check(devfun, opt, rho$lower, grad_tol)
  fit <- build(opt, chk, if (chk$ok) character(0) else fail_msg(chk))
  rec <- list(start = if (is.null(theta0)) "lme4" else "moments", optimizer = optimizer1, feval = opt$feval,
              criterion = opt$fval, max_grad = chk$max_grad, rel_grad = chk$rel_grad, converged = chk$ok, restarted = FALSE, restart_optimizer = NA_character_,
              restart_kept = NA, restart_criterion_change = NA_real_, restart_max_change = NA_real_,
              message = if (chk$ok) NA_character_ else fail_msg(chk))
  if (!chk$ok && restart != "none") {
    est0 <- estimates(fit)
    # near the optimum a small initial trust region saves evaluations (bobyqa: rhobeg 0.2 max|theta| by default)
    opt2 <- optimize(restart, start = list(theta = opt$par),
                     control = if (restart == "bobyqa") list(rhobeg = 1e-2, rhoend = 1e-6) else list())
    chk2 <- convergence_check(devfun, opt2, rho$lower, grad_tol)
    keep <- is.finite(opt2$fval) && opt2$fval < opt$fval
    fit2 <- build(opt2, chk2, if (chk2$ok) character(0) else fail_msg(chk2))
    rec$restarted <- TRUE
    rec$restart_optimizer <- restart
    rec$restart_kept <- keep
    rec$restart_criterion_change <- opt$fval - opt2$fval
    rec$restart_max_change <- max(abs(estimates(fit2) - est0))
    note <- sprintf("restarted from the fitted theta with %s: criterion %s by %.3g, estimates changed by up to %.3g",
                    restart, if (keep) "lowered" else "not lowered", abs(opt$fval - opt2$fval),
                    rec$restart_max_change)
    if (keep) {
      fit <- fit2
      rec[c("optimizer", "feval", "criterion", "max_grad", "rel_grad", "converged")] <-
        list(restart, opt2$feval, opt2$fval, chk2$max_grad, chk2$rel_grad, chk2$ok)
      chk <- chk2
    } else {
      fit <- build(opt, chk, fail_msg(chk))
    }
    rec$message <- if (chk$ok) note else paste0(fail_msg(chk), "; ", note)
    message(note)
  }
  if (!chk$ok) warning(paste0(fail_msg(chk), if (restart != "none") " after a restart" else ""))
  if (lme4::isSingular(fit)) message("boundary (singular) fit: see help('isSingular')")  # as lme4::lmer says
  if (lmertest) fit <- lmerTest::as_lmerModLmerTest(fit)
  list(fit = fit, glance = glance_lmer(fit, rec))
}

# One broom-style model row (see fit_lmer).
glance_lmer <- function(fit, rec) {
  reml <- lme4::isREML(fit)
  ll <- stats::logLik(fit)
  data.frame(nobs = stats::nobs(fit), sigma = stats::sigma(fit), logLik = as.numeric(ll), AIC = stats::AIC(fit),
             BIC = stats::BIC(fit), deviance = stats::deviance(fit, REML = FALSE),
             REMLcrit = if (reml) lme4::REMLcrit(fit) else NA_real_,
             df.residual = stats::df.residual(fit), singular = lme4::isSingular(fit), rec,
             stringsAsFactors = FALSE)
}

# lme4 signals singular fits (message "boundary (singular) fit") and fit_lmer signals convergence failures
# and restarts; emoalign_call captures both, so the functions below do not repeat them.

# The spec's df_method ("satterthwaite", "kenward_roger", "asymptotic": the one spelling from YAML to here) as
# each R package spells it: lmerTest's summary(ddf = ...) (NA: lme4's z tests) and emmeans' lmer.df.
DF_METHODS <- list(satterthwaite = c(lmerTest = "Satterthwaite", emmeans = "satterthwaite"),
                   kenward_roger = c(lmerTest = "Kenward-Roger", emmeans = "kenward-roger"),
                   asymptotic = c(lmerTest = NA_character_, emmeans = "asymptotic"))
df_spelling <- function(df_method, package) {
  if (!df_method %in% names(DF_METHODS)) stop(sprintf("unknown df_method '%s'", df_method))
  unname(DF_METHODS[[df_method]][[package]])
}

# Fit `formula` (fit_lmer: checked for convergence, restarted when lme4's check fails) and return
# list(table, glance). table rows:
#   effect = "fixed": term, estimate, std_error, statistic (t), df, p_value, conf_low, conf_high
#     (Wald intervals estimate +- qt(1 - (1 - conf_level)/2, df) * SE; df = Inf (normal) for "asymptotic")
#   effect = "ran_pars": group, term = "var__<name>" / "cov__<a>.<b>", estimate (variance / covariance)
# glance: one row with the model-level statistics (AIC, BIC, logLik, deviance, nobs, ...), see fit_lmer.
# df_method: "satterthwaite" | "kenward_roger" (lmerTest) | "asymptotic" (lme4, z tests); see df_spelling.
fit_lmm <- function(df, formula, reference_levels = NULL, df_method = "satterthwaite",
                    conf_level = 0.95, reml = TRUE, contrast = NULL, contrast_by = NULL,
                    restart = "bobyqa", grad_tol = 0.002) {
  df <- set_reference_levels(df, reference_levels)
  ddf <- df_spelling(df_method, "lmerTest")
  fitted <- fit_lmer(formula, df, REML = reml, restart = restart, grad_tol = grad_tol, lmertest = !is.na(ddf))
  fit <- fitted$fit
  if (is.na(ddf)) {
    co <- stats::coef(summary(fit))
    dfv <- rep(Inf, nrow(co))
    tv <- co[, "t value"]
    pv <- 2 * stats::pnorm(-abs(tv))
  } else {
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
  out <- rbind(fixed, ran)
  if (!is.null(contrast)) {
    ct <- lmm_contrasts(fit, contrast, contrast_by, df_method, conf_level)
    for (b in contrast_by) out[[b]] <- NA_character_
    out <- rbind(out, ct[, names(out)])
  }
  out$n <- stats::nobs(fit)
  rownames(out) <- NULL
  list(table = out, glance = fitted$glance)
}

# Simple effects with emmeans (Lenth 2024): differences between the levels of `factor` (each level minus
# the reference, e.g. "machine - human" for rater_type) within every combination of `by` (e.g. per
# emotion: the per-emotion machine - human bias the model implies, with a t test). df follow df_method
# (emmeans' lmer.df; its size limits are lifted so the choice is never switched silently).
# Rows: effect = "contrast", term = "<level> - <reference>", the `by` columns, estimate, std_error,
# statistic (t), df, p_value (unadjusted), conf_low, conf_high.
lmm_contrasts <- function(fit, factor, by = NULL, df_method = "satterthwaite", conf_level = 0.95) {
  lmer_df <- df_spelling(df_method, "emmeans")
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
# Returns list(table, glance) (glance: see fit_lmer).
# control: optimizer control of the first fit (see fit_lmer; tests use it to construct an early stop).
variance_components <- function(df, formula, reml = TRUE, ci = "none", conf_level = 0.95,
                                restart = "bobyqa", grad_tol = 0.002, control = list(), start = "moments") {
  fitted <- fit_lmer(formula, df, REML = reml, restart = restart, grad_tol = grad_tol, control = control,
                     start = start)
  fit <- fitted$fit
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
  list(table = out, glance = fitted$glance)
}
