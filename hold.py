import sys, time, multiprocessing as mp
sys.path.insert(0, "/work/main/bench")
import simple_load as sl
def run(i):
    import select
    q=mp.Queue(); ev=mp.Event()
    sl.client.__globals__
    ep = None
procs=[]
def c(i):
    ready=mp.Queue(); go=mp.Event(); dq=mp.Queue()
    p=mp.Process(target=sl.client, args=(i, 2500, 42801, "127.0.0.%d"%(2+i), ready, go, dq, 0))
    p.start(); ready.get(timeout=300); return p,go
ps=[c(i) for i in range(4)]
print("held", flush=True)
time.sleep(20)
for p,go in ps: go.set()
for p,go in ps: p.join()
