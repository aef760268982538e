module gosync.example/benches

go 1.19
