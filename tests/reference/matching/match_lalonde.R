## Reference values for causalcli's propensity-score matching engine.
##
## Fits the Dehejia-Wahba logit of treatment on covariates with glm() and
## runs Matching::Match on the linear predictor (the logit score) over a grid
## of settings, writing CSV fixtures next to this script so that the Python
## tests (test_match_r.py) need no R.
##
## Run from the repository root (see README.md in this folder):
##   Rscript tests/reference/matching/match_lalonde.R /tmp/nsw_cps.csv
## where /tmp/nsw_cps.csv is specs/data/nsw_cps.parquet exported to CSV.

suppressPackageStartupMessages(library(Matching))

args <- commandArgs(trailingOnly = TRUE)
cps_csv <- if (length(args) >= 1) args[1] else "/tmp/nsw_cps.csv"
out_dir <- "tests/reference/matching"
stopifnot(dir.exists(out_dir), file.exists(cps_csv))

## 17 significant digits round-trip an IEEE double; write.csv would keep 15.
num <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

formula <- treat ~ age + educ + black + hisp + marr + nodegree + re74 + re75
## glm's default stopping rule (relative deviance change < 1e-8) leaves the
## coefficients ~4e-9 from the MLE on nsw_cps; tighten it so the fixture is
## the MLE itself, to well below the 1e-8 tolerance of the Python test.
tight <- glm.control(epsilon = 1e-14, maxit = 100)

## Small synthetic sets, written to synthetic.csv for the Python side.
## "synthetic" has deliberate ties in the score:
##  - exact ties (two controls at the same score as a treated unit),
##  - a control 0.001 away, i.e. within distance.tolerance on Match's scale
##    (squared difference of standardised scores <= 1e-5),
##  - a treated unit equidistant from two controls,
##  - near-ties 1e-5 apart in raw units (also within the tolerance),
##  - a treated unit far from every control (dropped by the calipers).
## "synthetic_apart" has no control near any treated unit, so a caliper drops
## every treated unit and Match returns NA.
synthetic <- data.frame(
  dataset = "synthetic",
  treat = c(1, 1, 1, 1, 1, 1, 1, 1,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
  score = c(0, 0, 1, 2, 4.2, 3, 5, 9.5,
            -1, -0.5, 0, 0, 0.001, 0.5, 0.5, 1, 1, 1.25, 1.5, 2.5,
            4, 4.40001, 4.45, 3, 3, 3.75, 6, 6.25),
  y = c(10, 12.5, 7, 9, 14, 8.25, 11, 20,
        5, 6, 7.5, 8, 6.5, 9, 4, 7, 6.25, 5.5, 8, 7.75,
        10, 9.5, 11, 6, 6.5, 7, 12, 13)
)
## "synthetic_edges" pins down which SD scales what. Unit 4 lies 1.063243
## from treated unit 1: outside a 0.2 caliper in population SDs (1.04197),
## inside one in sample SDs (1.08452). Unit 6 lies 0.0168147 beyond an exact
## match of treated unit 2: a tie under distance.tolerance when scores are
## standardised by the sample SD (9.6e-6 <= 1e-5), not by the population SD.
edges <- data.frame(dataset = "synthetic_edges",
                    treat = c(1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
                    score = c(0, 5, 10, 1.063243, 5, 5.0168147,
                              -3, 2.5, 8, 9.5, 12, 13, 15),
                    y = c(3, 8, 6, 1, 4, 9, 2, 5, 7, 3.5, 6.5, 8.5, 1.5))
apart <- data.frame(dataset = "synthetic_apart", treat = c(1, 1, 0, 0, 0),
                    score = c(0, 1, 10, 11, 12), y = c(1, 2, 3, 4, 5))
write.csv(rbind(synthetic, edges, apart), file.path(out_dir, "synthetic.csv"),
          row.names = FALSE, quote = FALSE)

data_sets <- list(
  nsw_cps = read.csv(cps_csv),
  nsw_experimental = read.csv("specs/data/nsw_experimental.csv")
)

coef_rows <- list()
fitted_rows <- list()
scores <- list(
  synthetic = list(y = synthetic$y, tr = synthetic$treat, x = synthetic$score),
  synthetic_edges = list(y = edges$y, tr = edges$treat, x = edges$score),
  synthetic_apart = list(y = apart$y, tr = apart$treat, x = apart$score))
for (name in names(data_sets)) {
  d <- data_sets[[name]]
  fit <- glm(formula, family = binomial, data = d, control = tight)
  stopifnot(fit$converged)
  coef_rows[[name]] <- data.frame(dataset = name, term = names(coef(fit)),
                                  estimate = num(unname(coef(fit))))
  ## A sample of fitted values (every 50th row plus the extremes) keeps the
  ## fixture small while covering the whole range of the score.
  n <- nrow(d)
  rows <- sort(unique(c(seq(1, n, by = 50), which.min(fit$linear.predictors),
                        which.max(fit$linear.predictors), n)))
  fitted_rows[[name]] <- data.frame(dataset = name, row = rows - 1L,
                                    linear_predictor = num(unname(fit$linear.predictors[rows])),
                                    fitted = num(unname(fitted(fit)[rows])))
  scores[[name]] <- list(y = d$re78, tr = d$treat, x = unname(fit$linear.predictors))
}
## Observation weights as glm's `weights`: fractional, and zero for every
## fifth row (glm leaves those out of the fit but still reports their fitted
## values). binomial() warns about non-integer successes; the fit is the
## weighted MLE all the same.
d <- data_sets$nsw_experimental
d$w <- ((seq_len(nrow(d)) - 1) %% 5) * 0.5
fit <- suppressWarnings(glm(formula, family = binomial, data = d, weights = w,
                            control = tight))
stopifnot(fit$converged)
name <- "nsw_experimental_weighted"
coef_rows[[name]] <- data.frame(dataset = name, term = names(coef(fit)),
                                estimate = num(unname(coef(fit))))
rows <- seq(1, nrow(d), by = 7)
fitted_rows[[name]] <- data.frame(dataset = name, row = rows - 1L,
                                  linear_predictor = num(unname(fit$linear.predictors[rows])),
                                  fitted = num(unname(fitted(fit)[rows])))

write.csv(do.call(rbind, coef_rows), file.path(out_dir, "glm_coef.csv"),
          row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, fitted_rows), file.path(out_dir, "glm_fitted.csv"),
          row.names = FALSE, quote = FALSE)

## Match's default arguments are spelt out so the fixture documents them.
## The score Match sees is the glm linear predictor.
## The 0.01 caliper is beyond the brief's grid: on nsw_cps the wider
## calipers drop nobody, and this one does.
grid <- expand.grid(neighbors = c(1, 3), caliper = c(NA, 0.2, 0.05, 0.01))
res_rows <- list()
pair_rows <- list()
for (name in c("nsw_cps", "nsw_experimental", "synthetic", "synthetic_edges",
               "synthetic_apart")) {
  s <- scores[[name]]
  g <- grid
  if (name == "synthetic_apart") {
    ## Only calipers that drop every treated unit: Match returns NA.
    g <- data.frame(neighbors = c(1, 3), caliper = c(0.2, 0.2))
  }
  for (k in seq_len(nrow(g))) {
    m <- g$neighbors[k]
    cal <- g$caliper[k]
    caliper_arg <- if (is.na(cal)) NULL else cal
    cal_str <- if (is.na(cal)) "NA" else format(cal)
    r <- suppressWarnings(Match(Y = s$y, Tr = s$tr, X = s$x, estimand = "ATT",
                                M = m, caliper = caliper_arg, replace = TRUE,
                                ties = TRUE, Weight = 1, Var.calc = 0,
                                distance.tolerance = 1e-05, BiasAdjust = FALSE,
                                version = "standard"))
    if (!inherits(r, "Match") || !is.list(r)) {
      res_rows[[length(res_rows) + 1]] <- data.frame(
        dataset = name, neighbors = m, caliper = cal_str, estimate = "NA",
        se = "NA", se_standard = "NA", n_treated = sum(s$tr == 1),
        n_treated_matched = 0, n_dropped = sum(s$tr == 1), n_pairs = 0,
        dropped = "")
      next
    }
    res_rows[[length(res_rows) + 1]] <- data.frame(
      dataset = name, neighbors = m, caliper = cal_str,
      estimate = num(as.double(r$est)), se = num(as.double(r$se)),
      se_standard = num(r$se.standard), n_treated = r$orig.treated.nobs,
      n_treated_matched = num(r$wnobs), n_dropped = num(r$ndrops),
      n_pairs = length(r$index.treated),
      dropped = paste(sort(r$index.dropped) - 1L, collapse = ";"))
    pair_rows[[length(pair_rows) + 1]] <- data.frame(
      dataset = name, neighbors = m, caliper = cal_str,
      treated = r$index.treated - 1L, control = r$index.control - 1L,
      weight = num(r$weights))
  }
}
write.csv(do.call(rbind, res_rows), file.path(out_dir, "match_results.csv"),
          row.names = FALSE, quote = FALSE)
pairs <- do.call(rbind, pair_rows)
gz <- gzfile(file.path(out_dir, "match_pairs.csv.gz"), "w")
write.csv(pairs, gz, row.names = FALSE, quote = FALSE)
close(gz)

writeLines(c(R.version.string,
             paste("Matching", as.character(packageVersion("Matching")))),
           file.path(out_dir, "r_session.txt"))
