from calozdc.cli.main import main

raise SystemExit(main())
