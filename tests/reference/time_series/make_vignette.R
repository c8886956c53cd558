# CausalImpact's vignette example (Brodersen et al., CausalImpact R package, "CausalImpact" vignette),
# regenerated with base R only: a control series from an AR(0.999) process, the response 1.2 times it
# plus noise, and an effect of +10 from period 71 on (pre-period 1-70, post-period 71-100).
# Run: Rscript make_vignette.R  (writes vignette.csv and vignette_version.txt beside this script)
set.seed(1)
x1 <- 100 + arima.sim(model = list(ar = 0.999), n = 100)
y <- 1.2 * x1 + rnorm(100)
y[71:100] <- y[71:100] + 10
write.csv(data.frame(t = 1:100, y = round(as.numeric(y), 10), x1 = round(as.numeric(x1), 10)),
          "vignette.csv", row.names = FALSE)
writeLines(c(R.version.string, "set.seed(1); arima.sim(list(ar = 0.999), n = 100); pre 1-70, post 71-100"),
           "vignette_version.txt")
