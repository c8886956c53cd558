# The R calls behind honestdid_medicaid_rm.csv: the example of HonestDiD's README ("Sensitivity analysis using
# relative magnitudes restrictions"), whose printed sets (3 significant digits) the CSV copies.
#
# The CSV was not produced in this repository: it is what the README prints (see README.md). This script
# states the calls, so that anyone with R, fixest and HonestDiD can compare:
#
#   Rscript tests/reference/did/honestdid_medicaid.R tests/reference/did
#
# honestdid_stata_medicaid_rm_average.csv comes from the README of the Stata port (mcaceresb/stata-honestdid):
#   honestdid, l_vec(l_vec) pre(1/5) post(6/7) mvec(0(0.5)2) omit      with l_vec = (0.5, 0.5)
suppressPackageStartupMessages({library(fixest); library(HonestDiD)})
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[1] else "."
df <- read.csv(file.path(out, "ehec_data.csv"))
df <- df[df$year < 2016 & (is.na(df$yexp2) | df$yexp2 != 2015), ]
df$D <- ifelse(!is.na(df$yexp2) & df$yexp2 == 2014, 1, 0)
twfe <- feols(dins ~ i(year, D, ref = 2013) | stfips + year, cluster = "stfips", data = df)
betahat <- summary(twfe)$coefficients
sigma <- summary(twfe)$cov.scaled
rm <- createSensitivityResults_relativeMagnitudes(betahat = betahat, sigma = sigma, numPrePeriods = 5,
                                                  numPostPeriods = 2, Mbarvec = seq(0.5, 2, by = 0.5))
write.csv(data.frame(target = "first_post_period", mbar = rm$Mbar, lb = signif(rm$lb, 3), ub = signif(rm$ub, 3)),
          file.path(out, "honestdid_medicaid_rm.csv"), row.names = FALSE, quote = FALSE)
writeLines(c(R.version.string, paste("HonestDiD", packageVersion("HonestDiD")),
             paste("fixest", packageVersion("fixest"))), file.path(out, "r_session_honestdid.txt"))
