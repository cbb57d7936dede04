"""neuromorph.nn"""
