"""bp_hw.reference"""
