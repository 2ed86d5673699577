"""What a person looks at: plots (:mod:`.plots`) and the HTML report (:mod:`.html`)."""
