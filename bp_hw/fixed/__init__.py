"""bp_hw.fixed"""
