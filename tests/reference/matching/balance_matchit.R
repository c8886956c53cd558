## MatchIt's balance table of Match()'s matches, for causalcli's matching diagnostics.
##
## Match(estimand = ATT / ATC / ATE, ties = TRUE, replace = TRUE) on the glm logit score;
## each unit's weight is its total match weight (treated: 1 if matched, 0 if
## dropped by the caliper; control: the sum of its pair weights); MatchIt 4.5's
## summary() of those weights is written to balance_matchit.csv. Run from the
## repository root: Rscript tests/reference/matching/balance_matchit.R

suppressPackageStartupMessages({library(Matching); library(MatchIt)})
out_dir <- "tests/reference/matching"
num <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
tight <- glm.control(epsilon = 1e-14, maxit = 100)

nsw <- read.csv("specs/data/nsw_experimental.csv")
sim <- read.csv("tests/reference/weighting/sim_region.csv")
sim$region <- factor(sim$region)
sets <- list(
  nsw_experimental = list(d = nsw, tr = "treat", y = "re78",
                          f = treat ~ age + educ + black + hisp + marr + nodegree + re74 + re75),
  sim_region = list(d = sim, tr = "t", y = "y", f = t ~ x1 + x2 + region))
grid <- data.frame(neighbors = c(1, 3, 1, 1, 1, 3), caliper = c(NA, NA, 0.05, NA, NA, 0.05),
                   estimand = c("ATT", "ATT", "ATT", "ATC", "ATE", "ATE"), stringsAsFactors = FALSE)

rows <- list()
for (name in names(sets)) {
  s <- sets[[name]]
  d <- s$d
  fit <- glm(s$f, family = binomial, data = d, control = tight)
  for (k in seq_len(nrow(grid))) {
    cal <- grid$caliper[k]
    r <- Match(Y = d[[s$y]], Tr = d[[s$tr]], X = unname(fit$linear.predictors), estimand = grid$estimand[k],
               M = grid$neighbors[k], caliper = if (is.na(cal)) NULL else cal, replace = TRUE,
               ties = TRUE, Weight = 1, Var.calc = 0, distance.tolerance = 1e-5)
    ## Each unit's weight: 1 if it received matches (the focal units: treated for
    ## the ATT, controls for the ATC, all for the ATE), plus its total weight as
    ## a match of others. Match's MatchLoopC holds (focal unit, match, weight)
    ## per pair, whatever the estimand.
    lc <- r$MatchLoopC
    w <- numeric(nrow(d))
    w[unique(lc[, 1])] <- 1
    mw <- tapply(lc[, 3], lc[, 2], sum)
    w[as.integer(names(mw))] <- w[as.integer(names(mw))] + mw
    mi <- matchit(s$f, data = d, method = NULL, distance = "glm", estimand = grid$estimand[k])
    mi$weights <- w
    mi$info$method <- "Match"  # makes summary() report the weighted ("matched") table
    sm <- summary(mi, standardize = TRUE, interactions = FALSE, pair.dist = FALSE)
    for (part in c("all", "matched")) {
      tab <- if (part == "all") sm$sum.all else sm$sum.matched
      tab <- tab[rownames(tab) != "distance", , drop = FALSE]
      rows[[length(rows) + 1]] <- data.frame(
        dataset = name, estimand = grid$estimand[k], neighbors = grid$neighbors[k],
        caliper = if (is.na(cal)) "NA" else format(cal),
        n_dropped = r$ndrops, part = part, covariate = rownames(tab),
        mean_treated = num(tab[, "Means Treated"]), mean_control = num(tab[, "Means Control"]),
        smd = num(tab[, "Std. Mean Diff."]), variance_ratio = num(tab[, "Var. Ratio"]))
    }
  }
}
write.csv(do.call(rbind, rows), file.path(out_dir, "balance_matchit.csv"), row.names = FALSE, quote = FALSE)
