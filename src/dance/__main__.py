from dance.cli import main

raise SystemExit(main())
