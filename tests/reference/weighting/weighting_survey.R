## Reference values for causalcli's weighting design and balance table.
##
## For each data set, estimand and trim: glm logit propensity score, Hajek IPW
## weights, survey::svyglm(y ~ treat) on svydesign(ids = ~1, weights = ~w)
## (point estimate and its sandwich SE, weights treated as known), and
## MatchIt::summary() of the same weights (balance table). Run from the
## repository root:
##   Rscript tests/reference/weighting/weighting_survey.R
## Writes ipw_survey.csv, balance_matchit.csv and r_session.txt next to itself.

suppressPackageStartupMessages({library(survey); library(MatchIt)})
out_dir <- "tests/reference/weighting"
num <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
tight <- glm.control(epsilon = 1e-14, maxit = 100)

nsw <- read.csv("specs/data/nsw_experimental.csv")
nsw_f <- treat ~ age + educ + black + hisp + marr + nodegree + re74 + re75
sim <- read.csv(file.path(out_dir, "sim_region.csv"))
sim$region <- factor(sim$region)
sim_f <- t ~ x1 + x2 + region
sets <- list(
  nsw_experimental = list(d = nsw, f = nsw_f, tr = "treat", y = "re78"),
  sim_region = list(d = sim, f = sim_f, tr = "t", y = "y"))

weights_for <- function(e, tr, estimand) {
  switch(estimand,
         ate = ifelse(tr == 1, 1 / e, 1 / (1 - e)),
         att = ifelse(tr == 1, 1, e / (1 - e)),
         atc = ifelse(tr == 1, (1 - e) / e, 1),
         ato = ifelse(tr == 1, 1 - e, e))
}

est_rows <- list(); bal_rows <- list()
for (name in names(sets)) {
  s <- sets[[name]]
  for (trim in (if (name == "nsw_experimental") c(0, 0.25) else c(0, 0.1))) {
    ## Trimming drops units whose score (fitted on all units) is outside
    ## [trim, 1 - trim]; the score is not refitted on the rest.
    d <- s$d
    fit <- glm(s$f, family = binomial, data = d, control = tight)
    stopifnot(fit$converged)
    e <- unname(fitted(fit))
    keep <- e >= trim & e <= 1 - trim
    d <- d[keep, ]
    e <- e[keep]
    tr <- d[[s$tr]]
    for (estimand in c("ate", "att", "atc", "ato")) {
      d$w <- weights_for(e, tr, estimand)
      des <- svydesign(ids = ~1, weights = ~w, data = d)
      m <- svyglm(as.formula(paste(s$y, "~", s$tr)), design = des)
      est_rows[[length(est_rows) + 1]] <- data.frame(
        dataset = name, estimand = estimand, trim = trim, n_used = nrow(d),
        estimate = num(unname(coef(m)[2])), se = num(unname(sqrt(diag(vcov(m)))[2])))
      ## MatchIt's balance table of these weights (method = NULL: no matching;
      ## the weights are put in, as summary() reads them from the object).
      mi_est <- if (estimand == "ato") "ATE" else toupper(estimand)
      mi <- matchit(s$f, data = d, method = NULL, distance = "glm", estimand = mi_est)
      mi$weights <- d$w
      mi$info$method <- "weighting"  # makes summary() report the weighted ("matched") table
      sm <- summary(mi, standardize = TRUE, interactions = FALSE, pair.dist = FALSE)
      for (part in c("all", "matched")) {
        tab <- if (part == "all") sm$sum.all else sm$sum.matched
        tab <- tab[rownames(tab) != "distance", , drop = FALSE]
        bal_rows[[length(bal_rows) + 1]] <- data.frame(
          dataset = name, estimand = estimand, trim = trim, part = part,
          covariate = rownames(tab), mean_treated = num(tab[, "Means Treated"]),
          mean_control = num(tab[, "Means Control"]), smd = num(tab[, "Std. Mean Diff."]),
          variance_ratio = num(tab[, "Var. Ratio"]))
      }
    }
  }
}
write.csv(do.call(rbind, est_rows), file.path(out_dir, "ipw_survey.csv"), row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, bal_rows), file.path(out_dir, "balance_matchit.csv"), row.names = FALSE, quote = FALSE)
writeLines(c(R.version.string, paste("survey", as.character(packageVersion("survey"))),
             paste("MatchIt", as.character(packageVersion("MatchIt")))),
           file.path(out_dir, "r_session.txt"))
