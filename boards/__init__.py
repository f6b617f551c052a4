"""Board top-levels (installed as bp_hw.boards): the network wrapped with a UART and the board clock."""
