"""neuromorph.data"""
