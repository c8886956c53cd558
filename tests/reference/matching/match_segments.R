## Reference values for matching's effects by segment (the top-level `segments` key).
##
## causalcli's effect within `column=value` is the headline's matching run on that segment's rows alone, with the
## logit propensity score fitted once on all rows. Its R counterpart: glm on every row, then
## Match(Y, Tr, X = score) on each segment's subset (Mahalanobis: X = the covariates that vary in the subset,
## Weight = 2; bias adjustment: Z = the same columns).
##
## The data are simulated here with effects that differ by segment: 1, 2, 4 by g in {a, b, c}, -1/+1 by s in
## {0, 1}. Without replacement Match breaks ties at random: those settings use distance.tolerance = 1e-10 (with
## 1e-5, candidates within 0.003 SD of the nearest tie often among a few hundred units) and are run under R seeds
## 1-5, `tie_free` saying whether all five gave the same matches.
##
## Run from the repository root: Rscript tests/reference/matching/match_segments.R

suppressPackageStartupMessages(library(Matching))
out_dir <- "tests/reference/matching"
num <- function(x) if (is.null(x) || is.na(x)) "NA" else sprintf("%.17g", x)
tight <- glm.control(epsilon = 1e-14, maxit = 100)

set.seed(7)
n <- 800
x1 <- rnorm(n); x2 <- rnorm(n)
s <- rbinom(n, 1, 0.5)
g <- sample(c("a", "b", "c"), n, replace = TRUE)
treat <- rbinom(n, 1, plogis(-0.3 + 0.7 * x1 - 0.5 * x2 + 0.4 * s + 0.3 * (g == "b") - 0.3 * (g == "c")))
tau <- c(a = 1, b = 2, c = 4)[g] + (2 * s - 1)
y <- round(tau * treat + x1 + 0.5 * x2 + s + (g == "c") + rnorm(n), 6)
sim <- data.frame(treat, y, x1 = round(x1, 6), x2 = round(x2, 6), s, g)
## Rows in causalcli's order (it reads a study's rows sorted by treatment, then outcome, ...): matching without
## replacement visits focal units in row order.
sim <- sim[order(sim$treat, sim$y), ]
write.csv(sim, file.path(out_dir, "segments_sim.csv"), row.names = FALSE, quote = FALSE)
sim <- read.csv(file.path(out_dir, "segments_sim.csv"))

fit <- glm(treat ~ x1 + x2 + s + factor(g), binomial, data = sim, control = tight)
score <- unname(fit$linear.predictors)
covariates <- model.matrix(~ x1 + x2 + s + factor(g), sim)[, -1]

grid <- rbind(
  expand.grid(estimand = c("ATT", "ATC", "ATE"), neighbors = c(1, 3), caliper = c(NA, 0.05),
              distance = "propensity", replace = TRUE, bias = FALSE, stringsAsFactors = FALSE),
  expand.grid(estimand = c("ATT", "ATE"), neighbors = 1, caliper = NA, distance = "mahalanobis",
              replace = TRUE, bias = FALSE, stringsAsFactors = FALSE),
  expand.grid(estimand = c("ATT", "ATE"), neighbors = 1, caliper = NA, distance = "propensity",
              replace = TRUE, bias = TRUE, stringsAsFactors = FALSE),
  expand.grid(estimand = c("ATT", "ATC"), neighbors = c(1, 2), caliper = NA, distance = "propensity",
              replace = FALSE, bias = FALSE, stringsAsFactors = FALSE))
segments <- list()
for (v in sort(unique(sim$s))) segments[[paste0("s=", v)]] <- sim$s == v
for (v in sort(unique(sim$g))) segments[[paste0("g=", v)]] <- sim$g == v

rows <- list()
for (k in seq_len(nrow(grid))) {
  gr <- grid[k, ]
  cal <- if (is.na(gr$caliper)) NULL else gr$caliper
  tolerance <- if (gr$replace) 1e-5 else 1e-10
  for (label in names(segments)) {
    in_segment <- segments[[label]]
    varying <- covariates[in_segment, , drop = FALSE]
    varying <- varying[, apply(varying, 2, function(col) diff(range(col)) > 0), drop = FALSE]
    if (gr$distance == "propensity") {
      X <- as.matrix(score[in_segment]); Weight <- 1
    } else {
      X <- varying; Weight <- 2
    }
    Z <- if (gr$bias) varying else X
    seeds <- if (gr$replace) 1 else 1:5
    runs <- lapply(seeds, function(seed) {
      set.seed(seed)
      Match(Y = sim$y[in_segment], Tr = sim$treat[in_segment], X = X, Z = Z, estimand = gr$estimand,
            M = gr$neighbors, caliper = cal, replace = gr$replace, ties = gr$replace, Weight = Weight,
            BiasAdjust = gr$bias, Var.calc = 0, distance.tolerance = tolerance)
    })
    r <- runs[[1]]
    tie_free <- all(sapply(runs[-1], function(o) identical(o$index.control, r$index.control) &&
                                                  identical(o$index.treated, r$index.treated)))
    rows[[length(rows) + 1]] <- data.frame(
      estimand = gr$estimand, neighbors = gr$neighbors, caliper = if (is.null(cal)) "NA" else format(cal),
      distance = gr$distance, replace = gr$replace, bias_correction = gr$bias, tolerance = tolerance,
      segment = label,
      estimate = num(as.double(r$est)), se = num(r$se), se_standard = num(r$se.standard),
      n_treated = sum(sim$treat[in_segment]), n_control = sum(1 - sim$treat[in_segment]),
      n_dropped = num(r$ndrops), n_pairs = length(r$index.treated), tie_free = tie_free)
  }
}
write.csv(do.call(rbind, rows), file.path(out_dir, "match_segments.csv"), row.names = FALSE, quote = FALSE)
writeLines(c(R.version.string, paste("Matching", packageVersion("Matching"))),
           file.path(out_dir, "r_session_segments.txt"))
