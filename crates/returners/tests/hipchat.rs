// hipchat: the sink suite against a stand-in (to come)
