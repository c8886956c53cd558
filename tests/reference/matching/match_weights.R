## Reference values for matching with observation weights (the top-level `weights` key).
##
## causalcli fits the logit propensity score with the weights (glm(quasibinomial, weights = w): the weighted
## MLE, without glm's warning on non-integer counts) and matches on it as Match(Y, Tr, X = score, weights = w).
## One departure, passed through here: Match scales the caliper by sqrt(sum((x - mean_w)^2) / sum(w)) while
## causalcli uses the weighted SD sqrt(sum(w (x - mean_w)^2) / sum(w)); `caliper_r` is the caliper that gives
## Match the same width in raw units as causalcli's `caliper`.
##
## Weights: `frac` are continuous in [0.3, 3] (neighbours are counted by weight, so a unit of weight below 1
## brings more matches), `int` are integers 1-4.
##
## Run from the repository root: Rscript tests/reference/matching/match_weights.R

suppressPackageStartupMessages(library(Matching))
out_dir <- "tests/reference/matching"
num <- function(x) if (is.null(x) || length(x) == 0 || is.na(x)) "NA" else sprintf("%.17g", x)
tight <- glm.control(epsilon = 1e-14, maxit = 100)

set.seed(11)
n <- 600
x1 <- rnorm(n); x2 <- rnorm(n); b <- rbinom(n, 1, 0.4)
treat <- rbinom(n, 1, plogis(-0.4 + 0.8 * x1 - 0.5 * x2 + 0.5 * b))
y <- round(1 + 2 * treat + treat * x1 + x1 + 0.5 * x2 + b + rnorm(n), 6)
frac <- round(runif(n, 0.3, 3), 3)
int <- sample(1:4, n, replace = TRUE)
sim <- data.frame(treat, y, x1 = round(x1, 6), x2 = round(x2, 6), b, frac, int)
write.csv(sim, file.path(out_dir, "weights_sim.csv"), row.names = FALSE, quote = FALSE)
sim <- read.csv(file.path(out_dir, "weights_sim.csv"))
covariates <- as.matrix(sim[, c("x1", "x2", "b")])

grid <- rbind(
  expand.grid(weights = c("frac", "int"), estimand = c("ATT", "ATC", "ATE"), neighbors = c(1, 3),
              caliper = c(NA, 0.1), distance = "propensity", exact = FALSE, bias = FALSE, stringsAsFactors = FALSE),
  expand.grid(weights = c("frac", "int"), estimand = c("ATT", "ATE"), neighbors = c(1, 2), caliper = NA,
              distance = "mahalanobis", exact = FALSE, bias = FALSE, stringsAsFactors = FALSE),
  expand.grid(weights = "frac", estimand = c("ATT", "ATC"), neighbors = 1, caliper = NA,
              distance = "propensity", exact = TRUE, bias = FALSE, stringsAsFactors = FALSE),
  expand.grid(weights = "frac", estimand = c("ATT", "ATE"), neighbors = 1, caliper = NA,
              distance = "propensity", exact = FALSE, bias = TRUE, stringsAsFactors = FALSE))

rows <- list()
scores <- list()
for (wname in c("frac", "int")) {
  w <- sim[[wname]]
  fit <- suppressWarnings(glm(treat ~ x1 + x2 + b, quasibinomial, data = sim, weights = w, control = tight))
  scores[[wname]] <- unname(fit$linear.predictors)
  cat(wname, sprintf("%.17g", coef(fit)), "\n", file = file.path(out_dir, "weights_glm_coef.txt"),
      append = wname != "frac")
}
for (k in seq_len(nrow(grid))) {
  gr <- grid[k, ]
  w <- sim[[gr$weights]]
  score <- scores[[gr$weights]]
  if (gr$distance == "propensity") {
    X <- if (gr$exact) cbind(score, sim$b) else as.matrix(score); Weight <- 1
  } else {
    X <- covariates; Weight <- 2
  }
  exact <- if (gr$exact) c(FALSE, TRUE) else NULL
  cal <- NULL; cal_r <- NA
  if (!is.na(gr$caliper)) {
    m <- sum(score * w) / sum(w)
    cal_r <- gr$caliper * sqrt(sum(w * (score - m)^2) / sum(w)) / sqrt(sum((score - m)^2) / sum(w))
    cal <- cal_r
  }
  r <- Match(Y = sim$y, Tr = sim$treat, X = X, Z = if (gr$bias) covariates else X, estimand = gr$estimand,
             M = gr$neighbors, caliper = cal, exact = exact, replace = TRUE, ties = TRUE, Weight = Weight,
             BiasAdjust = gr$bias, Var.calc = 0, weights = w, distance.tolerance = 1e-5)
  ok <- !identical(r, NA) && !is.na(r$est)
  pw <- if (ok) r$weights else NA
  wmean <- function(v, idx) sum(pw * v[idx]) / sum(pw)
  rows[[k]] <- data.frame(
    weights = gr$weights, estimand = gr$estimand, neighbors = gr$neighbors,
    caliper = if (is.na(gr$caliper)) "NA" else format(gr$caliper), caliper_r = num(cal_r),
    distance = gr$distance, exact = gr$exact, bias_correction = gr$bias,
    estimate = if (ok) num(r$est) else "NA", se = if (ok) num(r$se) else "NA",
    se_standard = if (ok) num(r$se.standard) else "NA", estimate_unadjusted = if (ok) num(r$est.noadj) else "NA",
    wnobs = if (ok) num(r$wnobs) else "NA", ndrops = if (ok) num(r$ndrops) else "NA",
    n_pairs = if (ok) length(r$index.treated) else 0,
    x1_treated_after = if (ok) num(wmean(sim$x1, r$index.treated)) else "NA",
    x1_control_after = if (ok) num(wmean(sim$x1, r$index.control)) else "NA",
    stringsAsFactors = FALSE)
}
out <- do.call(rbind, rows)
write.csv(out, file.path(out_dir, "match_weights.csv"), row.names = FALSE, quote = FALSE)
writeLines(c(R.version.string, paste("Matching", as.character(packageVersion("Matching")))),
           file.path(out_dir, "r_session_weights.txt"))
