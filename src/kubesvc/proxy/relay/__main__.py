from kubesvc.proxy.relay.worker import main

main()
