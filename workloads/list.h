/* The catalogue: one WL(name) per file in workloads/, in --list order. */
WL(chan)
WL(workerpool)
WL(mutex)
WL(rwmutex)
WL(cond_signal)
WL(cond_broadcast)
