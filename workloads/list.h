/* The catalogue: one WL(name) per file in workloads/, in --list order. */
WL(chan)
WL(workerpool)
WL(pool)
WL(atomic)
