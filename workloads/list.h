/* The catalogue: one WL(name) per file in workloads/, in --list order. */
WL(chan)
WL(workerpool)
WL(semaphore)
WL(semaphore_weighted)
WL(waitgroup)
WL(once)
WL(select)
