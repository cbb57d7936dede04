from neuromorph.cli import main

raise SystemExit(main())
