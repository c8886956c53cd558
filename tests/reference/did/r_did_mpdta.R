# The R calls behind mpdta_r_did_ref_{attgt,aggte,pretest}.csv (R package did 2.x, Callaway and Sant'Anna).
#
# These fixtures were not produced in this repository: they are the reference outputs published with the
# csdid project's parity tests (see README.md), kept byte for byte. This script states the calls that give
# them, so that anyone with R can regenerate and compare:
#
#   Rscript tests/reference/did/r_did_mpdta.R tests/reference/did
#
# It writes the three CSVs (same columns) and r_session.txt (R and did versions) into the given folder.
suppressPackageStartupMessages(library(did))
args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args)) args[1] else "."
mpdta <- read.csv(file.path(out, "mpdta.csv"))
sim <- read.csv(file.path(out, "did_sim_data.csv"))

scenarios <- list(
  mpdta_nev_dr = list(data = mpdta, y = "lemp", t = "year", id = "countyreal", g = "first.treat",
                      control = "nevertreated", est = "dr", xf = ~1),
  mpdta_nyt_dr = list(data = mpdta, y = "lemp", t = "year", id = "countyreal", g = "first.treat",
                      control = "notyettreated", est = "dr", xf = ~1),
  mpdta_nev_reg_cov = list(data = mpdta, y = "lemp", t = "year", id = "countyreal", g = "first.treat",
                           control = "nevertreated", est = "reg", xf = ~lpop),
  mpdta_nev_ipw = list(data = mpdta, y = "lemp", t = "year", id = "countyreal", g = "first.treat",
                       control = "nevertreated", est = "ipw", xf = ~1),
  sim_nev_dr = list(data = sim, y = "Y", t = "period", id = "id", g = "G",
                    control = "nevertreated", est = "dr", xf = ~X)
)

attgt <- list(); aggte_rows <- list(); pretest <- list()
for (name in names(scenarios)) {
  s <- scenarios[[name]]
  fit <- att_gt(yname = s$y, tname = s$t, idname = s$id, gname = s$g, xformla = s$xf, data = s$data,
                panel = TRUE, control_group = s$control, est_method = s$est, bstrap = FALSE,
                base_period = "varying")
  attgt[[name]] <- data.frame(scenario = name, group = fit$group, t = fit$t, att = fit$att, se = fit$se)
  pretest[[name]] <- data.frame(scenario = name, W = fit$W, Wpval = fit$Wpval)
  for (type in c("simple", "group", "dynamic", "calendar")) {
    a <- aggte(fit, type = type, bstrap = FALSE)
    egt <- if (type == "simple") NA else a$egt
    aggte_rows[[paste(name, type)]] <- data.frame(
      scenario = name, type = type, egt = egt,
      att_egt = if (type == "simple") NA else a$att.egt, se_egt = if (type == "simple") NA else a$se.egt,
      overall_att = a$overall.att, overall_se = a$overall.se)
  }
}
write.csv(do.call(rbind, attgt), file.path(out, "mpdta_r_did_ref_attgt.csv"), row.names = FALSE)
write.csv(do.call(rbind, aggte_rows), file.path(out, "mpdta_r_did_ref_aggte.csv"), row.names = FALSE)
write.csv(do.call(rbind, pretest), file.path(out, "mpdta_r_did_ref_pretest.csv"), row.names = FALSE)
writeLines(c(R.version.string, paste("did", packageVersion("did"))), file.path(out, "r_session.txt"))
