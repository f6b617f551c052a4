"""bp_hw.datasets"""
