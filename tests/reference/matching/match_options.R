## Reference values for matching options beyond the ATT grid of match_lalonde.R:
## estimands ATE and ATC, exact matching within strata, and BiasAdjust.
##
## Match(Y, Tr, X = <glm logit score> [, exact columns], estimand, M, caliper,
## replace = TRUE, ties = TRUE, Weight = 1, Var.calc = 0, distance.tolerance = 1e-5).
## exact: X = cbind(score, exact columns) with exact = c(FALSE, TRUE, ...).
## BiasAdjust: Z = the covariates (Abadie-Imbens 2011 regression of the outcome
## on Z within the matched controls, weighted by how often each is used).
## Run from the repository root: Rscript tests/reference/matching/match_options.R

suppressPackageStartupMessages(library(Matching))
out_dir <- "tests/reference/matching"
num <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
tight <- glm.control(epsilon = 1e-14, maxit = 100)

nsw <- read.csv("specs/data/nsw_experimental.csv")
covs <- c("age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75")
fit <- glm(treat ~ age + educ + black + hisp + marr + nodegree + re74 + re75, binomial, data = nsw,
           control = tight)
score <- unname(fit$linear.predictors)
Z <- as.matrix(nsw[, covs])

grid <- expand.grid(estimand = c("ATT", "ATC", "ATE"), neighbors = c(1, 3), caliper = c(NA, 0.05),
                    exact = c("", "nodegree", "black;marr"), bias = c(FALSE, TRUE),
                    stringsAsFactors = FALSE)
rows <- list()
for (k in seq_len(nrow(grid))) {
  g <- grid[k, ]
  ex <- if (g$exact == "") character(0) else strsplit(g$exact, ";")[[1]]
  X <- cbind(score, as.matrix(nsw[, ex, drop = FALSE]))
  exact_arg <- if (length(ex)) c(FALSE, rep(TRUE, length(ex))) else NULL
  r <- Match(Y = nsw$re78, Tr = nsw$treat, X = X, Z = Z, estimand = g$estimand, M = g$neighbors,
             caliper = if (is.na(g$caliper)) NULL else g$caliper, exact = exact_arg,
             replace = TRUE, ties = TRUE, Weight = 1, Var.calc = 0, BiasAdjust = g$bias,
             distance.tolerance = 1e-5)
  ok <- inherits(r, "Match") && is.list(r)
  rows[[k]] <- data.frame(
    dataset = "nsw_experimental", estimand = g$estimand, neighbors = g$neighbors,
    caliper = if (is.na(g$caliper)) "NA" else format(g$caliper), exact = g$exact, bias_adjust = g$bias,
    estimate = if (ok) num(as.double(r$est)) else "NA", se = if (ok) num(as.double(r$se)) else "NA",
    estimate_noadj = if (ok) num(r$est.noadj) else "NA",
    n_pairs = if (ok) length(r$index.treated) else 0, n_dropped = if (ok) num(r$ndrops) else "NA",
    n_dropped_matches = if (ok) r$ndrops.matches else NA)
}
write.csv(do.call(rbind, rows), file.path(out_dir, "match_options.csv"), row.names = FALSE, quote = FALSE)

## Mahalanobis matching (Weight = 2) on the covariates, with exact strata and BiasAdjust.
mrows <- list()
mgrid <- expand.grid(estimand = c("ATT", "ATC", "ATE"), neighbors = c(1, 3), exact = c("", "nodegree"),
                     bias = c(FALSE, TRUE), stringsAsFactors = FALSE)
for (k in seq_len(nrow(mgrid))) {
  g <- mgrid[k, ]
  exact_arg <- if (g$exact == "") NULL else covs %in% g$exact
  r <- Match(Y = nsw$re78, Tr = nsw$treat, X = Z, Z = Z, estimand = g$estimand, M = g$neighbors,
             exact = exact_arg, replace = TRUE, ties = TRUE, Weight = 2, Var.calc = 0,
             BiasAdjust = g$bias, distance.tolerance = 1e-5)
  mrows[[k]] <- data.frame(
    dataset = "nsw_experimental", estimand = g$estimand, neighbors = g$neighbors, exact = g$exact,
    bias_adjust = g$bias, estimate = num(as.double(r$est)), se = num(as.double(r$se)),
    estimate_noadj = num(r$est.noadj), n_pairs = length(r$index.treated), n_dropped = num(r$ndrops))
}
write.csv(do.call(rbind, mrows), file.path(out_dir, "match_mahalanobis.csv"), row.names = FALSE, quote = FALSE)
