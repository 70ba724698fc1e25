package main

// scenarios are run in this order.
var scenarios = []*scenario{
	runNone,
	runBridge,
	runPublish,
	execTrue,
	parallel20,
	runtimeTrue,
	pullBusybox,
	pullRedis,
	commit100,
	saveRedis,
	loadRedis,
	berthtestRedis,
	memory50,
}
