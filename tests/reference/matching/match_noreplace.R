## Reference values for matching WITHOUT replacement (Match(replace = FALSE)).
##
## Match forces ties = FALSE without replacement and breaks ties (candidates within
## distance.tolerance of the M-th distance) at random with R's generator, so the data
## set here is simulated with continuous covariates and checked to be tie-free: every
## setting is run under five RNG seeds and must give the same matches (tie_free = TRUE).
##
## Without replacement Match also sets version = "fast", which returns no Abadie-Imbens
## se (r$se is NULL; summary() prints se.standard). The AI formula on the same matches is
## what Matching's internal RmatchLoop computes with version = "standard"; it is called
## here with the arguments Match passes, and written as se_ai.
##
## Run from the repository root: Rscript tests/reference/matching/match_noreplace.R

suppressPackageStartupMessages(library(Matching))
out_dir <- "tests/reference/matching"
num <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))
tight <- glm.control(epsilon = 1e-14, maxit = 100)

args <- commandArgs(trailingOnly = TRUE)
set.seed(if (length(args)) as.integer(args[1]) else 2)
n <- 120
x1 <- rnorm(n); x2 <- rnorm(n); x3 <- runif(n, -1, 1)
g <- rbinom(n, 1, 0.5)
treat <- rbinom(n, 1, plogis(-0.7 + 0.8 * x1 - 0.5 * x2 + 0.4 * x3 + 0.3 * g))
y <- round(1 + 1.5 * treat + x1 + 0.5 * x2 - x3 + 0.5 * g + 0.5 * treat * x1 + rnorm(n), 6)
sim <- data.frame(treat, x1 = round(x1, 6), x2 = round(x2, 6), x3 = round(x3, 6), g, y)
## Rows in causalcli's order: it reads a study's rows sorted by their values (treatment, outcome, then
## covariates), never in the file's order, and greedy matching without replacement visits treated units in
## row order; y is continuous, so (treat, y) fixes the order.
sim <- sim[order(sim$treat, sim$y), ]
write.csv(sim, file.path(out_dir, "noreplace_sim.csv"), row.names = FALSE, quote = FALSE)
sim <- read.csv(file.path(out_dir, "noreplace_sim.csv"))

fit <- glm(treat ~ x1 + x2 + x3 + g, binomial, data = sim, control = tight)
score <- unname(fit$linear.predictors)
Z <- as.matrix(sim[, c("x1", "x2", "x3", "g")])

## Match's own argument handling for replace = FALSE (Match 4.10-8): ties <- FALSE, version "fast",
## restrict <- matrix(0, 1, 3); ecaliper from the caliper (population SD) and exact columns.
ai_se <- function(X, estimand, M, caliper, exact, Weight) {
  All <- c(ATT = 0, ATE = 1, ATC = 2)[[estimand]]
  xvars <- ncol(X)
  ecal <- NULL
  if (!is.null(caliper)) {
    caliper <- rep(caliper, xvars)
    ecal <- sapply(1:xvars, function(i) caliper[i] * sqrt(sum((X[, i] - mean(X[, i]))^2) / nrow(X)))
  }
  if (!is.null(exact)) {
    if (is.null(caliper)) ecal <- rep(abs(max(X) - min(X) + sqrt(.Machine$double.eps) * 100), xvars)
    ecal[exact] <- sqrt(.Machine$double.eps)
  }
  r <- Matching:::RmatchLoop(Y = sim$y, Tr = sim$treat, X = X, Z = X, V = matrix(1, nrow(X), 1), All = All,
                            M = M, BiasAdj = 0, Weight = Weight, Weight.matrix = xvars, Var.calc = 0,
                            weight = rep(1, nrow(X)), SAMPLE = 0, ccc = sqrt(.Machine$double.eps),
                            cdd = 1e-5, ecaliper = ecal, exact = exact, caliper = caliper,
                            restrict = matrix(0, 1, 3), weights.flag = FALSE, replace = FALSE, ties = FALSE,
                            version = "standard")
  as.double(r$se)
}

grid <- expand.grid(estimand = c("ATT", "ATC", "ATE"), neighbors = c(1, 2), caliper = c(NA, 0.1),
                    distance = c("propensity", "mahalanobis"), exact = c("", "g"), stringsAsFactors = FALSE)
grid <- grid[!(grid$distance == "mahalanobis" & !is.na(grid$caliper)), ]
rows <- list()
pairs <- list()
for (k in seq_len(nrow(grid))) {
  gr <- grid[k, ]
  cal <- if (is.na(gr$caliper)) NULL else gr$caliper
  if (gr$distance == "propensity") {
    X <- if (gr$exact == "") as.matrix(score) else cbind(score, sim$g)
    exact <- if (gr$exact == "") NULL else c(FALSE, TRUE)
    Weight <- 1
  } else {
    X <- Z
    exact <- if (gr$exact == "") NULL else c(FALSE, FALSE, FALSE, TRUE)
    Weight <- 2
  }
  runs <- lapply(c(1, 2, 3, 4, 5), function(s) {
    set.seed(s)
    suppressWarnings(Match(Y = sim$y, Tr = sim$treat, X = X, estimand = gr$estimand, M = gr$neighbors,
                           caliper = cal, exact = exact, replace = FALSE, Weight = Weight,
                           distance.tolerance = 1e-5))
  })
  r <- runs[[1]]
  tie_free <- all(sapply(runs[-1], function(o) identical(o$index.control, r$index.control) &&
                                                identical(o$index.treated, r$index.treated)))
  rows[[k]] <- data.frame(
    estimand = gr$estimand, neighbors = gr$neighbors, caliper = if (is.null(cal)) "NA" else format(cal),
    distance = gr$distance, exact = gr$exact, estimate = num(as.double(r$est)),
    se_standard = num(r$se.standard), se_ai = num(ai_se(X, gr$estimand, gr$neighbors, cal, exact, Weight)),
    se_match_is_null = is.null(r$se), n_pairs = length(r$index.treated), n_dropped = num(r$ndrops),
    tie_free = tie_free)
  pairs[[k]] <- data.frame(estimand = gr$estimand, neighbors = gr$neighbors,
                           caliper = if (is.null(cal)) "NA" else format(cal), distance = gr$distance,
                           exact = gr$exact, treated = r$index.treated - 1, control = r$index.control - 1,
                           weight = num(r$weights))
}
write.csv(do.call(rbind, rows), file.path(out_dir, "match_noreplace.csv"), row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, pairs), file.path(out_dir, "match_noreplace_pairs.csv"), row.names = FALSE,
          quote = FALSE)
