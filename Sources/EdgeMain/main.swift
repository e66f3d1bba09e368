import Edge

// The `edge` executable. Everything lives in the Edge library.
EdgeCommand.main()
