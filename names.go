package berth

import (
	"crypto/rand"
	"math/big"
)

// Random container names in docker's style: an adjective and the surname
// of a notable scientist or engineer, "eager_lovelace".

var nameAdjectives = []string{
	"admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome", "beautiful",
	"blissful", "bold", "boring", "brave", "busy", "charming", "clever", "compassionate",
	"competent", "condescending", "confident", "cool", "cranky", "crazy", "dazzling", "determined",
	"distracted", "dreamy", "eager", "ecstatic", "elastic", "elated", "elegant", "eloquent",
	"epic", "exciting", "fervent", "festive", "flamboyant", "focused", "friendly", "frosty",
	"funny", "gallant", "gifted", "goofy", "gracious", "great", "happy", "hardcore",
	"heuristic", "hopeful", "hungry", "infallible", "inspiring", "intelligent", "interesting", "jolly",
	"jovial", "keen", "kind", "laughing", "loving", "lucid", "magical", "modest",
	"musing", "mystifying", "naughty", "nervous", "nice", "nifty", "nostalgic", "objective",
	"optimistic", "peaceful", "pedantic", "pensive", "practical", "priceless", "quirky", "quizzical",
	"recursing", "relaxed", "reverent", "romantic", "sad", "serene", "sharp", "silly",
	"sleepy", "stoic", "strange", "stupefied", "suspicious", "sweet", "tender", "thirsty",
	"trusting", "unruffled", "upbeat", "vibrant", "vigilant", "vigorous", "wizardly", "wonderful",
	"xenodochial", "youthful", "zealous", "zen",
}

var nameSurnames = []string{
	"agnesi", "albattani", "allen", "almeida", "archimedes", "ardinghelli", "aryabhata", "babbage",
	"banach", "bardeen", "bartik", "bassi", "bell", "benz", "bhabha", "blackwell",
	"bohr", "booth", "borg", "bose", "boyd", "brahmagupta", "brattain", "brown",
	"carson", "cerf", "chandrasekhar", "clarke", "colden", "cori", "cray", "curie",
	"darwin", "davinci", "dijkstra", "dubinsky", "easley", "edison", "einstein", "elion",
	"engelbart", "euclid", "euler", "faraday", "fermat", "fermi", "feynman", "franklin",
	"galileo", "gates", "goldberg", "goldstine", "goodall", "gould", "hamilton", "hawking",
	"heisenberg", "hermann", "hertz", "hodgkin", "hofstadter", "hopper", "hypatia", "jackson",
	"jang", "jennings", "johnson", "joliot", "kalam", "kepler", "kilby", "knuth",
	"kowalevski", "lalande", "lamarr", "lamport", "leakey", "leavitt", "lehmann", "liskov",
	"lovelace", "lumiere", "mahavira", "margulis", "matsumoto", "maxwell", "mayer", "mccarthy",
	"mcclintock", "meitner", "mendel", "merkle", "minsky", "mirzakhani", "morse", "murdock",
	"napier", "newton", "nobel", "noether", "noyce", "pare", "pascal", "pasteur",
	"payne", "perlman", "pike", "poincare", "ptolemy", "raman", "ramanujan", "ride",
	"ritchie", "rosalind", "saha", "sammet", "shamir", "shannon", "shaw", "shockley",
	"sinoussi", "snyder", "spence", "stonebraker", "swanson", "swartz", "tesla", "thompson",
	"torvalds", "turing", "varahamihira", "villani", "volhard", "wescoff", "wiles", "williams",
	"wilson", "wing", "wozniak", "wright", "wu", "yalow", "yonath", "zhukovsky",
}

// randomName returns a docker-style name; retry is added as a number
// suffix when earlier picks were taken.
func randomName(retry int) string {
	pick := func(n int) int {
		v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
		if err != nil {
			panic(err)
		}
		return int(v.Int64())
	}
	name := nameAdjectives[pick(len(nameAdjectives))] + "_" + nameSurnames[pick(len(nameSurnames))]
	if name == "boring_wozniak" { // Steve Wozniak is not boring (docker's rule, kept)
		return randomName(retry)
	}
	if retry > 0 {
		name += string(rune('0' + pick(10)))
	}
	return name
}
