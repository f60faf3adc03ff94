# Krippendorff's alpha via irr::kripp.alpha (Gamer et al., irr package), used only for comparison when
# irr is installed; emoalign computes alpha with the Python `krippendorff` package.
# m: raters x units numeric matrix (NA = missing); level: nominal | ordinal | interval | ratio.
irr_available <- function() requireNamespace("irr", quietly = TRUE)

irr_kripp_alpha <- function(m, level = "ordinal") {
  if (!irr_available()) stop("the R package 'irr' is not installed")
  r <- irr::kripp.alpha(as.matrix(m), method = level)
  data.frame(metric = "krippendorff_alpha", estimate = r$value, n = r$subjects, level = level,
             stringsAsFactors = FALSE)
}
