package cli

// InstallGRPCLog installs the grpclog adapter, as the first Execute of a
// process does; a test binary's TestMain calls it before any test starts
// gRPC code, since grpclog.SetLoggerV2 must not race with it.
var InstallGRPCLog = installGRPCLog
