"""neuromorph.train"""
