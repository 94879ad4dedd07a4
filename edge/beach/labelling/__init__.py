"""The labelling tool (``geoedge label``): a local web page where a station operator corrects
the water mask of TimeX images, and the layout it saves them in (:mod:`.record`)."""
