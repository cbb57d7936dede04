"""neuromorph.functional"""
