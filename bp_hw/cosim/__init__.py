"""bp_hw.cosim"""
