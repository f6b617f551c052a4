"""bp_hw.hdl"""
