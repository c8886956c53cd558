## Reference values for causalcli's weighting design with observation (sampling) weights.
##
## Data: sim_sampled.csv (sampled.py: a sample drawn unequally from a population, s = 1 / P(sampled)).
## For each estimand: the propensity score fitted with the sampling weights,
## glm(t ~ x1 + x2, family = quasibinomial, weights = s) (quasibinomial: the same
## coefficients as binomial without the warning for non-integer weights), the
## Hajek weights w of that score, and survey::svyglm(y ~ t) on
## svydesign(ids = ~1, weights = ~sw) with sw = s * w: the coefficient of t and
## its sandwich SE (the weights treated as known); and MatchIt::summary()'s balance
## table of the same Hajek weights with s as its sampling weights (s.weights).
## Run from the repository root:
##   Rscript tests/reference/weighting/weighting_sampling_weights.R
## Writes ipw_sampling_weights.csv, balance_sampling_weights.csv and
## r_session_sampling_weights.txt next to itself.

suppressPackageStartupMessages({library(survey); library(MatchIt)})
out_dir <- "tests/reference/weighting"
num <- function(x) sprintf("%.17g", x)
tight <- glm.control(epsilon = 1e-14, maxit = 100)

d <- read.csv(file.path(out_dir, "sim_sampled.csv"))
fit <- glm(t ~ x1 + x2, family = quasibinomial, weights = s, data = d, control = tight)
stopifnot(fit$converged)
e <- unname(fitted(fit))

weights_for <- function(e, tr, estimand) {
  switch(estimand,
         ate = ifelse(tr == 1, 1 / e, 1 / (1 - e)),
         att = ifelse(tr == 1, 1, e / (1 - e)),
         atc = ifelse(tr == 1, (1 - e) / e, 1))
}

rows <- list(); bal_rows <- list()
for (estimand in c("ate", "att", "atc")) {
  d$w <- weights_for(e, d$t, estimand)
  d$sw <- d$s * d$w
  m <- svyglm(y ~ t, design = svydesign(ids = ~1, weights = ~sw, data = d))
  rows[[length(rows) + 1]] <- data.frame(
    estimand = estimand, n_used = nrow(d),
    estimate = num(unname(coef(m)["t"])), se = num(unname(sqrt(diag(vcov(m)))["t"])),
    propensity_intercept = num(unname(coef(fit)[1])), propensity_x1 = num(unname(coef(fit)[2])),
    propensity_x2 = num(unname(coef(fit)[3])))
  ## MatchIt weighs the table before adjustment (and the SMD's denominator) by s.weights, after by w * s.weights
  mi <- matchit(t ~ x1 + x2, data = d, method = NULL, distance = "glm", estimand = toupper(estimand),
                s.weights = ~s)
  mi$weights <- d$w
  mi$info$method <- "weighting"  # makes summary() report the weighted ("matched") table
  sm <- summary(mi, standardize = TRUE, interactions = FALSE, pair.dist = FALSE)
  for (part in c("all", "matched")) {
    tab <- if (part == "all") sm$sum.all else sm$sum.matched
    tab <- tab[rownames(tab) != "distance", , drop = FALSE]
    bal_rows[[length(bal_rows) + 1]] <- data.frame(
      estimand = estimand, part = part, covariate = rownames(tab),
      mean_treated = num(tab[, "Means Treated"]), mean_control = num(tab[, "Means Control"]),
      smd = num(tab[, "Std. Mean Diff."]), variance_ratio = num(tab[, "Var. Ratio"]))
  }
}
write.csv(do.call(rbind, rows), file.path(out_dir, "ipw_sampling_weights.csv"), row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, bal_rows), file.path(out_dir, "balance_sampling_weights.csv"), row.names = FALSE,
          quote = FALSE)
writeLines(c(R.version.string, paste("survey", as.character(packageVersion("survey"))),
             paste("MatchIt", as.character(packageVersion("MatchIt")))),
           file.path(out_dir, "r_session_sampling_weights.txt"))
